# Campaign Pulse API image: `docker compose up` runs it with PostgreSQL and Redis.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Install the project (and its pinned dependencies) from pyproject.toml.
WORKDIR /src
COPY pyproject.toml ./
COPY app ./app
COPY graph ./graph
COPY models ./models
COPY subscriptions ./subscriptions
RUN pip install . && rm -rf /src

# Run as an unprivileged user; its home is the working directory (an embedded
# SQLite file, if one is used without PULSE_DATABASE_URL, lands there).
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin pulse
USER pulse
WORKDIR /home/pulse

ENV PULSE_HOST=0.0.0.0 \
    PULSE_PORT=8000
EXPOSE 8000

# Liveness: the process answers. (Readiness, /readyz, also checks the database and Redis.)
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]

CMD ["pulse", "serve", "--host", "0.0.0.0", "--port", "8000"]
