"""The control plane's shared state, behind one store chosen by URL (SPEC v2: Control plane): SQLite on one host,
PostgreSQL for several; SQLAlchemy Core statements and Alembic migrations, one conformance suite for both.

Import from the modules (`store`, `migrate`, `url`): the URL checks every command runs load no SQLAlchemy."""
