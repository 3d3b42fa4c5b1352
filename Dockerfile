# syntax=docker/dockerfile:1
# The authsvc container image.
#
#   docker build -t registry.example.com/authsvc:0.1.0 .
#   docker run --rm registry.example.com/authsvc:0.1.0 --help
#
# No secret is baked in: the home (/var/lib/authsvc) holds only what is mounted at run time
# (config, the serving certificate and keys from Kubernetes Secrets; the database URL from an
# environment variable). The base is pinned to an exact release; pin the digest as well
# (python:3.11.11-slim-bookworm@sha256:...) where your registry policy asks for it.
# tests/deploy/test_dockerfile.py lints this file (no Docker engine runs in CI).

# --- build: a virtualenv with authsvc and its dependencies (pip and its caches stay here) ---
FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/authsvc
WORKDIR /src
# Dependencies first, so that a source change does not reinstall them.
# README.m[d]: the package's long description, copied when present (a glob may match nothing).
COPY pyproject.toml README.m[d] ./
RUN mkdir -p pki authsvc && touch pki/__init__.py authsvc/__init__.py \
    && /opt/authsvc/bin/pip install . \
    && /opt/authsvc/bin/pip uninstall -y authsvc
COPY pki/ pki/
COPY authsvc/ authsvc/
RUN /opt/authsvc/bin/pip install --no-deps . \
    && /opt/authsvc/bin/python -m compileall -q /opt/authsvc/lib

# --- runtime: the virtualenv, an unprivileged user, nothing else --------------------------
FROM python:3.11.11-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="authsvc" \
      org.opencontainers.image.description="PKI and TokenReview webhook for Kubernetes clusters" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 authsvc \
    && useradd --system --uid 10001 --gid authsvc --home-dir /var/lib/authsvc --shell /usr/sbin/nologin authsvc \
    && install -d -o authsvc -g authsvc -m 0700 /var/lib/authsvc
COPY --from=build /opt/authsvc /opt/authsvc
ENV PATH=/opt/authsvc/bin:$PATH \
    AUTHSVC_HOME=/var/lib/authsvc \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Numeric, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
WORKDIR /var/lib/authsvc
# 8443: the webhook (mTLS, kube-apiserver only); 8444: the public listener (/login, discovery,
# probes). Set server.public_url in authsvc.yaml to the URL clients use for 8444.
EXPOSE 8443 8444
# An HTTPS GET of /healthz on the public listener, the server's certificate verified against
# the home's cluster CA: a TCP connect would only prove that a socket is open. (The webhook port
# refuses a client without the API server's certificate during the handshake.)
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, ssl, urllib.request; home = os.environ['AUTHSVC_HOME']; url = os.environ.get('AUTHSVC_HEALTHZ_URL', 'https://127.0.0.1:8444/healthz'); urllib.request.urlopen(url, timeout=3, context=ssl.create_default_context(cafile=home + '/pki/ca.crt')).read()"]
ENTRYPOINT ["authsvc"]
CMD ["serve", "--bind", "0.0.0.0:8443", "--public-bind", "0.0.0.0:8444"]
