"""A one-page Starlette (ASGI) shop using the Splitwerk SDK's ASGI middleware."""
