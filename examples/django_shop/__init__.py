"""A one-page Django shop using the Splitwerk SDK's Django middleware (see README.md)."""
