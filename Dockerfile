# The talkroom image used by docker-compose.yml. Everything the app serves
# (templates, htmx, CSS) is inside the package: no network at run time.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /srv/talkroom

COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
# Editable: `talkroom migrate` finds alembic.ini and migrations/ beside app/.
RUN pip install -e . && useradd --system --home-dir /srv/talkroom talkroom \
    && mkdir data /uploads && chown talkroom data /uploads
USER talkroom

EXPOSE 8000
# `serve` applies pending migrations first; replicas take turns on a
# PostgreSQL advisory lock, so starting several at once is safe.
CMD ["talkroom", "serve", "--host", "0.0.0.0", "--port", "8000"]
