# SmartNat agent image: the agent, keepalived (run by `smartnat keepalived-watchdog` in the chart's
# second container), iptables, ipset, conntrack, iproute2, procps.
# Multi-stage: the first stage has npm and the TypeScript compiler; the final one has only Node's
# runtime, the compiled JS, production node_modules and the Debian runtime packages.
# No container engine runs on the development machines: this build is unverified there.
# test/chart/packaging.test.ts checks the package list below is the one the lab and CI install.

# Pinned by exact version tag (Node 20, Debian 12). Pin by digest in a release pipeline.
FROM node:20.20.2-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY scripts/bundle-client-node.mjs ./scripts/
RUN npm run build && npm prune --omit=dev

FROM node:20.20.2-bookworm-slim
# Runtime packages: packaging/debian-packages-runtime.txt, the single list shared with .ci/run
# and the lab.
# iptables: Debian's package ships both backends (iptables-legacy-* and iptables-nft-*, nft being
# the alternatives default). The image deliberately does not pick one with update-alternatives:
# the agent runs the backend-named tools and chooses, like kube-proxy's iptables-wrapper, the
# backend that already holds the host's rules (src/dataplane/host-checks.ts), so its rules land in
# the same tables as kube-proxy's and the CNI's; on an empty host it uses nft. The host's
# /run/xtables.lock is mounted by the chart so both sides serialise on one lock.
COPY packaging/debian-packages-runtime.txt /tmp/packages.txt
RUN apt-get update \
 && sed -e 's/#.*//' -e 's/[[:space:]]//g' /tmp/packages.txt | grep -v '^$' \
    | xargs apt-get install -y --no-install-recommends \
 && rm -rf /var/lib/apt/lists/* /tmp/packages.txt
WORKDIR /opt/smartnat
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY templates ./templates
# UID 0 with only NET_ADMIN and NET_RAW (the chart drops every other capability): a non-root user
# would get no ambient capabilities, and iptables, ipset and keepalived would fail.
USER 0
ENTRYPOINT ["node", "/opt/smartnat/dist/main.js"]
CMD ["agent"]
