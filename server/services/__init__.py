"""Use cases of Splitwerk, one module per area; they get the store and the time as arguments."""
