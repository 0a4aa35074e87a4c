# Process Sentinel container image.
#
#   docker build -t process-sentinel:0.1.0 .
#
# Needs BuildKit (the default builder since Docker 23; Buildah/Podman work too) for the
# `RUN --mount` that installs the wheels without leaving them in a layer.
#
# Stage 1 (builder) compiles the Cython core into a platform wheel and collects wheels for every
# runtime dependency. Stage 2 (runtime) installs only those wheels: no compiler, no source tree.
#
# Run-time mounts (see docs/deploy.md):
#   /opt/sentinel/wallet   Oracle wallet (tnsnames.ora, ewallet.pem), mount it read-only
#   /var/lib/sentinel      SENTINEL_DATA_DIR: embedded SQLite database and the dev signing key
#   /opt/sentinel/metrics  PROMETHEUS_MULTIPROC_DIR: must be writable (tmpfs/emptyDir when the
#                          root filesystem is read-only)
#   /tmp                   writable scratch space (tmpfs/emptyDir when the root fs is read-only)

ARG PYTHON_IMAGE=python:3.12-slim

# --------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src

# Dependency wheels first, keyed only on pyproject.toml and the constraints file, so source edits reuse
# this layer. constraints.txt pins every release to the ones the test suite ran against.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; open('/tmp/requirements.txt', 'w').write('\n'.join(deps) + '\n')" \
 && pip wheel --wheel-dir /wheels --constraint constraints.txt --requirement /tmp/requirements.txt

# The project itself, with the compiled core (SENTINEL_NO_EXTENSIONS is deliberately not set).
COPY . .
RUN pip wheel --no-deps --wheel-dir /wheels . \
 && python -c "import glob, sys, zipfile; wheels = glob.glob('/wheels/process_sentinel-*.whl'); assert len(wheels) == 1, wheels; names = zipfile.ZipFile(wheels[0]).namelist(); core = [n for n in names if n.startswith('sentinel/_core/') and n.endswith('.so')]; print(wheels[0], *core, sep='\n  '); sys.exit(0 if core else 'no compiled sentinel/_core/*.so in ' + wheels[0])"

# --------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="process-sentinel" \
      org.opencontainers.image.description="Real-time process monitoring service (Oracle AQ / HTTP ingest, REST API, Prometheus metrics)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      io.process-sentinel.wallet-mount="/opt/sentinel/wallet (read-only)"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SENTINEL_DATA_DIR=/var/lib/sentinel \
    SENTINEL_LISTEN_ADDRESS=0.0.0.0 \
    SENTINEL_LISTEN_PORT=8080 \
    PROMETHEUS_MULTIPROC_DIR=/opt/sentinel/metrics

# Fixed uid/gid 10001: the Kubernetes manifests (runAsUser/runAsGroup/fsGroup) rely on it.
RUN groupadd --system --gid 10001 sentinel \
 && useradd --system --uid 10001 --gid 10001 \
        --home-dir /var/lib/sentinel --no-create-home --shell /usr/sbin/nologin sentinel \
 && install -d -m 0750 -o 10001 -g 10001 /var/lib/sentinel /opt/sentinel/metrics \
 && install -d -m 0755 /opt/sentinel/wallet

# Install from the builder's wheels only (--no-index: nothing is fetched or compiled here), then
# prove the compiled core loads (without the multiprocess dir, so no metric files land in the image).
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels process-sentinel \
 && pip check \
 && env -u PROMETHEUS_MULTIPROC_DIR python -c "import sentinel._core as c; assert c.COMPILED, 'sentinel._core is not the compiled core'" \
 && rm -rf /root/.cache /tmp/*

WORKDIR /var/lib/sentinel

# Embedded-backend data lives outside the container layer; the Oracle backend does not use it.
VOLUME ["/var/lib/sentinel"]

USER 10001:10001

EXPOSE 8080

# No curl in the slim image: probe /health (liveness, no database call) with the stdlib.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('SENTINEL_LISTEN_PORT', '8080') + '/health', timeout=4)"]

ENTRYPOINT ["sentinel"]
CMD ["serve"]
