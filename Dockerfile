# A static bootforge on a minimal base. DHCP needs the host's network, so
# run it with host networking (see docker-compose.yml).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/bootforge ./cmd/bootforge

# Loaders come from Debian's packages, copied by `bootforge init`.
FROM debian:bookworm-slim AS loaders
RUN apt-get update && apt-get install -y --no-install-recommends ipxe pxelinux syslinux-common \
      grub-efi-amd64-bin shim-signed grub-efi-amd64-signed && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/bootforge /usr/local/bin/bootforge
RUN bootforge init /var/lib/bootforge

FROM gcr.io/distroless/static-debian12
COPY --from=build /out/bootforge /usr/local/bin/bootforge
COPY --from=loaders /var/lib/bootforge /var/lib/bootforge
VOLUME /var/lib/bootforge
ENTRYPOINT ["/usr/local/bin/bootforge"]
# The config init wrote, for serve and for every command run in the container.
ENV BOOTFORGE_CONFIG=/var/lib/bootforge/bootforge.yaml
CMD ["serve"]
