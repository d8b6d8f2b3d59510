# SmartNat agent image. Multi-stage: build with the full Node toolchain, ship only the runtime.
# Runtime packages come from packaging/debian-packages-runtime.txt (the same list the lab and CI
# install). No container engine runs on the development machines: this build is unverified there.
FROM node:20.20.2-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20.20.2-bookworm-slim
COPY packaging/debian-packages-runtime.txt /tmp/packages.txt
RUN apt-get update \
 && xargs -a /tmp/packages.txt apt-get install -y --no-install-recommends \
 && rm -rf /var/lib/apt/lists/* /tmp/packages.txt
WORKDIR /opt/smartnat
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY templates ./templates
ENTRYPOINT ["node", "/opt/smartnat/dist/main.js"]
CMD ["agent"]
