# The Python services of docker-compose.yml (api, worker, worker-chain, beat, setup): one image,
# the command picks the role. Contract artifacts are committed, so no Node at run time; the web
# chat's browser libraries and /docs' Swagger UI come from npm in a build stage.
FROM node:22-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --create-home --uid 10001 openchat && mkdir -p /var/lib/openchat && chown openchat /var/lib/openchat
WORKDIR /app
# Dependencies first (cached layer), then the source. Editable install: the code finds
# contracts/artifacts and web/ beside the packages, as in a checkout.
COPY pyproject.toml README.md constraints.txt ./
COPY assistant/__init__.py assistant/__init__.py
COPY retrieval/__init__.py retrieval/__init__.py
COPY payouts/__init__.py payouts/__init__.py
RUN pip install -c constraints.txt -e . && rm -rf assistant retrieval payouts
COPY assistant assistant
COPY retrieval retrieval
COPY payouts payouts
COPY contracts/artifacts contracts/artifacts
COPY web web
COPY --from=web /src/web/node_modules web/node_modules
# The embedding model's derived files (optimized graph, int8 query encoder) are built into the
# image: otherwise each new data volume builds them on the API's first start, and the quantizer
# alone peaks at ~0.5 GB, enough to OOM-kill a container under a tight memory limit.
ENV OPENCHAT_MODEL_DIR=/opt/openchat/models
RUN openchat models && chown -R openchat /opt/openchat
USER openchat
ENV OPENCHAT_DATA_DIR=/var/lib/openchat OPENCHAT_HOST=0.0.0.0 OPENCHAT_PORT=8000
EXPOSE 8000
CMD ["openchat", "serve"]
