# nabla: the production image. Build with `docker build -t nabla .`
# Stages: deps (third-party packages as requirements/serve.txt pins them, cached until it
# changes), wheel (the app), runtime (slim, non-root, the two in one virtual environment).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
COPY requirements/serve.txt ./
# The runtime dependencies alone, each at the version and hash the lock file pins, so code
# changes reuse this layer.
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --require-hashes -r serve.txt

FROM ${PYTHON_IMAGE} AS wheel
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app/ app/
COPY schemas/ schemas/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NABLA_HOST=0.0.0.0 \
    NABLA_PORT=8000 \
    WEB_CONCURRENCY=1
RUN groupadd --system --gid 10001 nabla \
 && useradd --system --uid 10001 --gid nabla --create-home --home-dir /home/nabla nabla
COPY --from=deps /opt/venv /opt/venv
COPY --from=wheel /wheels/ /tmp/wheels/
RUN pip install --no-cache-dir --no-deps /tmp/wheels/*.whl \
 && rm -rf /tmp/wheels
USER 10001:10001
WORKDIR /home/nabla
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/livez' % os.environ.get('NABLA_PORT', '8000'), timeout=4)"]
CMD ["nabla", "serve"]
