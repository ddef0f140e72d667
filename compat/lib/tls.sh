# Throwaway TLS material (openssl) for the suites and the bench, made in the
# current directory; 3-day certificates, 2048-bit RSA keys.
#
#   tls_ca NAME                      NAME.key, NAME.pem: a CA
#   tls_cert CA NAME SUBJECT ROLE    NAME.key, NAME.crt, NAME.pem (key + cert
#                                    + CA's cert), signed by CA (its NAME.pem
#                                    and NAME.key). ROLE server: SAN
#                                    IP:127.0.0.1 and DNS:localhost, server
#                                    and client auth; ROLE client: client auth.
#
# SUBJECT is openssl's -subj; Kafka prints the RFC 2253 form, in reverse
# order ("/O=strom/OU=eng/CN=alice" is CN=alice,OU=eng,O=strom).

tls_ca() {
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.pem" -days 3 \
        -subj "/CN=strom-test-$1" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}

tls_cert() {
    local ca=$1 name=$2 subject=$3 role=$4
    openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "$subject" || return 1
    if [ "$role" = server ]; then
        printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=CA:FALSE" \
            "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth,clientAuth"
    else
        printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
            "extendedKeyUsage=clientAuth"
    fi >"$name.ext"
    openssl x509 -req -in "$name.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial -days 3 \
        -extfile "$name.ext" -out "$name.crt" || return 1
    cat "$name.key" "$name.crt" "$ca.pem" >"$name.pem"
}
