# cpwc-detect inference server. See docs/container.md.
#
#   docker build -t cpwc-detect .
#   docker run --rm -p 8080:8080 cpwc-detect
#
# Configuration is by environment variables only (CPWC_*; `cpwc-detect serve --help`).
# To serve another model, mount its directory and point CPWC_MODEL_DIR at it:
#   docker run --rm -p 8080:8080 -v "$PWD/models/my-model:/models/my-model:ro" \
#     -e CPWC_MODEL_DIR=/models/my-model cpwc-detect

ARG BASE_IMAGE=node:20-bookworm-slim

# tini as PID 1 forwards SIGTERM to node (which drains in-flight requests) and reaps zombies.
# Installed in its own stage so that the runtime stage runs no commands: no apt state in it.
FROM ${BASE_IMAGE} AS tini
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && /usr/bin/tini --version

FROM ${BASE_IMAGE} AS build
WORKDIR /src
# .npmrc skips onnxruntime-node's CUDA download (the CPU build is in the package).
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY tools/copy-assets.js ./tools/
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && rm -f .npmrc
# Keep only this platform's ONNX Runtime binaries (the package ships darwin, win32 and
# linux for two CPU types); sharp's optional dependencies are already platform-specific.
RUN set -eu; \
    case "$(uname -m)" in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) echo "unsupported CPU $(uname -m)" >&2; exit 1 ;; esac; \
    napi=node_modules/onnxruntime-node/bin/napi-v6; \
    test -f "$napi/linux/$arch/onnxruntime_binding.node"; \
    find "$napi" -mindepth 1 -maxdepth 1 ! -name linux -exec rm -rf {} +; \
    find "$napi/linux" -mindepth 1 -maxdepth 1 ! -name "$arch" -exec rm -rf {} +
# npm can report success without installing anything; fail the build here instead.
RUN test -f dist/cli/index.js && test -f dist/server/public/index.html && test -f dist/detection/session-worker.js \
 && node -e "require('onnxruntime-node'); require('sharp'); require('express'); require('pino')"

FROM ${BASE_IMAGE} AS runtime
WORKDIR /app
# ORT_DISABLE_TELEMETRY: onnxruntime 1.30 on Linux otherwise starts a telemetry client that
# tries HTTPS uploads and writes a device ID.
ENV NODE_ENV=production \
    ORT_DISABLE_TELEMETRY=1 \
    CPWC_HOST=0.0.0.0 \
    CPWC_PORT=8080 \
    CPWC_MODEL_DIR=/app/models/shapes-cpwc-r50-fpn
COPY --from=tini /usr/bin/tini /usr/bin/tini
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY models ./models
USER node
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "const h=process.env.CPWC_HOST;require('http').get({host:!h||h==='0.0.0.0'||h==='::'?'127.0.0.1':h,port:process.env.CPWC_PORT||process.env.PORT||8080,path:'/readyz',timeout:4000},r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1)).on('timeout',()=>process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/cli/index.js", "serve"]
