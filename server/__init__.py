"""Splitwerk server: assignment, event counting, admin and results APIs."""
