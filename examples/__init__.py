"""Runnable examples of shops that use Splitwerk (also the end-to-end tests' fixtures)."""
