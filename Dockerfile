# Herald's image for people who build with Docker; `make image` builds the same image without a
# Docker engine (hack/mkimage). One image, two static binaries: /herald-controller (the default
# entrypoint, user 65532) and /herald-speaker (its DaemonSet sets the command and runs it as root
# with only NET_RAW and NET_ADMIN).
#
#   docker build -t ghcr.io/herald-lb/herald:v0.1.0 .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG TARGETOS=linux
ARG TARGETARCH
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags='-s -w' -o /out/herald-controller ./controller \
 && CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags='-s -w' -o /out/herald-speaker ./speaker \
 && mkdir -p /out/etc /out/tmp && chmod 1777 /out/tmp \
 && printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > /out/etc/passwd \
 && printf 'root:x:0:\nnonroot:x:65532:\n' > /out/etc/group

FROM scratch
COPY --from=build /out/ /
USER 65532:65532
WORKDIR /
ENTRYPOINT ["/herald-controller"]
