"""gRPC server credentials from satgate.tls files, shared by the Mint and the authz server (beside the generated
stubs they both use): TLS 1.2+, client certificates required when a CA bundle is given, and new files taken at the
next handshake after they change (grpc's dynamic credentials ask before each one; a stat is all it costs)."""

from __future__ import annotations

import grpc

from satgate.tls import TlsError, TlsFiles


def server_credentials(files: TlsFiles) -> grpc.ServerCredentials:
    def configuration() -> grpc.ServerCertificateConfiguration:
        cert, key, ca = files.read()
        return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)

    current = {"stamp": files.stamp()}

    def fetch() -> grpc.ServerCertificateConfiguration | None:
        stamp = files.stamp()
        if stamp is None or stamp == current["stamp"]:
            return None  # unchanged: keep the configuration in use
        try:
            fresh = configuration()
        except TlsError:
            return None  # half-written: the last good pair until the files load together
        current["stamp"] = stamp
        return fresh

    return grpc.dynamic_ssl_server_credentials(
        configuration(), fetch, require_client_authentication=files.client_ca_file is not None
    )
