# syntax=docker/dockerfile:1
# smk: one image for every role (`smk webhook|controller|csi-provider|agent|fetch|inject`).
#   docker build -t ghcr.io/smk-dev/smk:0.1.0 .
# Stage 1 bundles the TypeScript with esbuild (`npm run build`: dist/smk.mjs + chunks + dist/proto);
# stage 2 is distroless Node 24: no shell, no package manager, non-root (uid 65532). The bundle
# needs no node_modules at run time.
# Expected size (no Docker engine where this was written, so estimated from measured parts): the
# node 24 binary is 127 MB (45 MB gzipped), the distroless cc base ~25 MB, the bundle without source
# maps 7.1 MB (1.2 MB gzipped): about 160 MB on disk, about 55 MB to pull. The bundle is ~5% of it.

ARG NODE_VERSION=24
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
# Dependencies first, so a source change does not re-download them. Install scripts stay off
# (esbuild's platform binary is an optional dependency, no postinstall needed).
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json ./
COPY scripts/build.ts scripts/build.ts
COPY src/ src/
# Then lay out the final file system under /out: the bundle without source maps (the minified
# code keeps its names for errors), its shebang pointed at distroless's node (there is no
# /usr/bin/env there), and `smk` on PATH — the injected agent containers run `smk agent init|refresh`.
RUN node scripts/build.ts \
 && mkdir -p /out/usr/local/lib/smk /out/usr/local/bin \
 && cp -R dist/. /out/usr/local/lib/smk/ \
 && find /out/usr/local/lib/smk -name '*.map' -delete \
 && sed -i '1s|^#!.*|#!/nodejs/bin/node|' /out/usr/local/lib/smk/smk.mjs \
 && chmod 0755 /out/usr/local/lib/smk/smk.mjs \
 && ln -s ../lib/smk/smk.mjs /out/usr/local/bin/smk
# The bundle runs without node_modules.
RUN cd /tmp && NODE_PATH= node /out/usr/local/lib/smk/smk.mjs version

FROM gcr.io/distroless/nodejs24-debian12:nonroot
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="smk" \
      org.opencontainers.image.description="Secrets Manager for Kubernetes: AWS Secrets Manager as the source of truth for Kubernetes secrets" \
      org.opencontainers.image.source="https://github.com/smk-dev/smk" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/ /
# `smk` resolves through PATH for exec probes and the injected agent's `command: [smk, …]`.
ENV NODE_ENV=production \
    PATH=/usr/local/bin:/nodejs/bin:/usr/bin:/bin
# uid/gid 65532 ("nonroot"); the Helm chart runs it with a read-only root file system and an
# emptyDir on /tmp (Node's compile cache). The CSI provider alone runs as root (hostPath socket).
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/smk"]
CMD ["--help"]
