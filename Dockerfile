# insitu as a small static image: a pure-Go binary (CGO_ENABLED=0; the
# journal's SQLite is pure Go) on distroless, with the configs at /configs.
# For the cluster deployments (docs/cluster.md, deploy/kubernetes):
#
#   docker build -t insitu:latest .
#   docker run --rm -v "$PWD/out:/out" insitu:latest reproduce --scale quick --configs /configs --out /out/reproduce-quick
#
# The ngspice op-amp backend needs the simulator: deploy/docker/Dockerfile.ngspice.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /insitu ./cmd/insitu

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /insitu /usr/local/bin/insitu
COPY --from=build /src/configs /configs
WORKDIR /home/nonroot
ENTRYPOINT ["/usr/local/bin/insitu"]
CMD ["--help"]
