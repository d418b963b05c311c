"""A small shop, as a Django project sets up affy_middleware: the app and the middleware
in ``settings.py``, a model, views that write in a transaction (``ATOMIC_REQUESTS``)."""
