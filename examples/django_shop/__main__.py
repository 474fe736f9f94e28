"""``python -m examples.django_shop runserver 127.0.0.1:5002``: Django's manage.py for it."""

import sys

from django.core.management import execute_from_command_line

import examples.django_shop.app  # noqa: F401  (configures the settings)

execute_from_command_line(sys.argv)
