"""Example programs to trace (``exectracer demo`` runs ``service``)."""
