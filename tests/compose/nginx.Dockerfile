# A stand-in for the public `nginx` image (scripts/test-compose): Debian's nginx on a
# local Debian base, reading /etc/nginx/nginx.conf and staying in the foreground.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx \
 && rm -rf /var/lib/apt/lists/*
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
