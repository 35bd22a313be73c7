# syntax=docker/dockerfile:1
# The cptrules server image: the wheel is built (protos generated at build) in one stage and
# installed on a slim Python base in the last, which runs as a non-root user on the embedded
# rules and data. `docker build .` builds it; `docker build --target content .` builds the
# small content image the Kubernetes manifests copy rules and imported data from (deploy/).

ARG PYTHON_VERSION=3.12

# -- build: the wheel and every dependency's wheel ------------------------------------------------
FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m pip install build
COPY pyproject.toml hatch_build.py README.md ./
COPY protos/ protos/
COPY src/ src/
COPY rules/ rules/
COPY data/ data/
RUN python -m build --wheel --outdir /wheels . \
 && python -m pip wheel --wheel-dir /wheels /wheels/cptrules-*.whl

# -- content: rules and imported data for a volume (see deploy/base/deployment.yaml) ---------------
FROM busybox:1.37 AS content
COPY rules/ /content/rules/
RUN mkdir -p /content/data
USER 10001:10001

# -- runtime: the last stage, what `docker build .` produces --------------------------------------
FROM python:${PYTHON_VERSION}-slim AS runtime
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    CPTRULES_DATA_DIR=/var/lib/cptrules \
    CPTRULES_CACHE_DIR=/tmp/cptrules-cache
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m pip install --no-index --find-links=/wheels cptrules \
 && groupadd --system --gid 10001 cptrules \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin cptrules \
 && mkdir -p /var/lib/cptrules
USER 10001:10001
EXPOSE 50051 9090
HEALTHCHECK --interval=15s --timeout=6s --start-period=120s --retries=3 \
    CMD ["cptrules", "health", "127.0.0.1:50051", "--timeout", "5"]
ENTRYPOINT ["cptrules", "serve"]
CMD ["--host", "0.0.0.0", "--port", "50051"]
