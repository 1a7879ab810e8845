/*
 * A device-side INLET/1 client over BearSSL, configured as the ESP8266 Arduino
 * core's BearSSL::WiFiClientSecure configures its engine: TLS 1.0 to 1.2, the
 * core's default client suite list (same suites, same order), renegotiation
 * off, and the key pinned as setKnownKey does (br_x509_knownkey). The receive
 * and send buffers are sized as setBufferSizes(recv, xmit) sizes them: the
 * data size plus BearSSL's 325 bytes of input and 85 bytes of output overhead
 * (the core's default is setBufferSizes(16384, 512)).
 *
 * Usage: bearssl_client HOST PORT RECV XMIT ec|rsa|ta KEYHEX [EXPHEX] COUNT WINDOW
 *   ec:  KEYHEX is the uncompressed P-256 point; rsa: KEYHEX the modulus and
 *   EXPHEX the public exponent, big-endian hex (setKnownKey). ta: KEYHEX is the
 *   server's DER certificate, made the one trust anchor as setTrustAnchors
 *   does (BearSSL's x509_minimal, with the host's clock as the time).
 * BEARSSL_MAXVER=0x0302 limits the client to TLS 1.1 (a legacy device).
 * Sends "INLET/1 id=bearssl boot=<pid>", then COUNT readings in windows of
 * WINDOW, and checks that every one is acknowledged in order. Prints one line
 * "ok acked=N version=0xVVVV suite=0xSSSS" and exits 0, or prints the BearSSL
 * error and exits 1.
 */
#include <bearssl.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const uint16_t core_suites[] = {
	BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	BR_TLS_ECDHE_ECDSA_WITH_AES_128_CCM, BR_TLS_ECDHE_ECDSA_WITH_AES_256_CCM,
	BR_TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, BR_TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8,
	BR_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, BR_TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
	BR_TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384, BR_TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384,
	BR_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, BR_TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	BR_TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, BR_TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	BR_TLS_ECDH_ECDSA_WITH_AES_128_GCM_SHA256, BR_TLS_ECDH_RSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_ECDH_ECDSA_WITH_AES_256_GCM_SHA384, BR_TLS_ECDH_RSA_WITH_AES_256_GCM_SHA384,
	BR_TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256, BR_TLS_ECDH_RSA_WITH_AES_128_CBC_SHA256,
	BR_TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA384, BR_TLS_ECDH_RSA_WITH_AES_256_CBC_SHA384,
	BR_TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA, BR_TLS_ECDH_RSA_WITH_AES_128_CBC_SHA,
	BR_TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA, BR_TLS_ECDH_RSA_WITH_AES_256_CBC_SHA,
	BR_TLS_RSA_WITH_AES_128_GCM_SHA256, BR_TLS_RSA_WITH_AES_256_GCM_SHA384,
	BR_TLS_RSA_WITH_AES_128_CCM, BR_TLS_RSA_WITH_AES_256_CCM,
	BR_TLS_RSA_WITH_AES_128_CCM_8, BR_TLS_RSA_WITH_AES_256_CCM_8,
	BR_TLS_RSA_WITH_AES_128_CBC_SHA256, BR_TLS_RSA_WITH_AES_256_CBC_SHA256,
	BR_TLS_RSA_WITH_AES_128_CBC_SHA, BR_TLS_RSA_WITH_AES_256_CBC_SHA,
	BR_TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA, BR_TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA,
	BR_TLS_ECDH_ECDSA_WITH_3DES_EDE_CBC_SHA, BR_TLS_ECDH_RSA_WITH_3DES_EDE_CBC_SHA,
	BR_TLS_RSA_WITH_3DES_EDE_CBC_SHA,
};

static int sock_read(void *ctx, unsigned char *buf, size_t len) {
	for (;;) {
		ssize_t n = read(*(int *)ctx, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		return n > 0 ? (int)n : -1;
	}
}

static int sock_write(void *ctx, const unsigned char *buf, size_t len) {
	for (;;) {
		ssize_t n = write(*(int *)ctx, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		return n > 0 ? (int)n : -1;
	}
}

static size_t unhex(const char *s, unsigned char **out) {
	size_t n = strlen(s) / 2;
	unsigned char *b = malloc(n);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(s + 2 * i, "%2x", &v);
		b[i] = (unsigned char)v;
	}
	*out = b;
	return n;
}

static br_ssl_client_context sc;

/* dn collects the subject DN of the trust anchor's certificate. */
static unsigned char dn[1024];
static size_t dnlen;
static void dn_append(void *ctx, const void *buf, size_t len) {
	(void)ctx;
	if (dnlen + len <= sizeof dn) {
		memcpy(dn + dnlen, buf, len);
		dnlen += len;
	}
}
static br_sslio_context io;

static void fail(const char *what) {
	fprintf(stdout, "fail %s: bearssl error %d\n", what, br_ssl_engine_last_error(&sc.eng));
	exit(1);
}

/* readline reads one line (without '\n') into line. */
static void readline(char *line, size_t max) {
	size_t n = 0;
	for (;;) {
		unsigned char c;
		if (br_sslio_read(&io, &c, 1) != 1)
			fail("read");
		if (c == '\n')
			break;
		if (n + 1 < max)
			line[n++] = (char)c;
	}
	line[n] = 0;
}

int main(int argc, char **argv) {
	if (argc < 9) {
		fprintf(stderr, "usage: %s HOST PORT RECV XMIT ec|rsa KEYHEX [EXPHEX] COUNT WINDOW\n", argv[0]);
		return 2;
	}
	int a = 1;
	const char *host = argv[a++];
	int port = atoi(argv[a++]);
	int recv = atoi(argv[a++]), xmit = atoi(argv[a++]);
	const char *kt = argv[a++];
	const char *keyhex = argv[a++];
	const char *exphex = strcmp(kt, "rsa") == 0 ? argv[a++] : NULL;
	if (argc < a + 2) {
		fprintf(stderr, "missing COUNT WINDOW\n");
		return 2;
	}
	long count = atol(argv[a++]), window = atol(argv[a++]);

	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {0};
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, host, &sa.sin_addr);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		perror("connect");
		return 1;
	}

	/* setBufferSizes(recv, xmit): clamp to [512, 16384], add the overheads. */
	recv = recv < 512 ? 512 : recv > 16384 ? 16384 : recv;
	xmit = xmit < 512 ? 512 : xmit > 16384 ? 16384 : xmit;
	size_t inlen = (size_t)recv + 325, outlen = (size_t)xmit + 85;
	unsigned char *ibuf = malloc(inlen), *obuf = malloc(outlen);

	br_ssl_client_zero(&sc);
	br_ssl_engine_add_flags(&sc.eng, BR_OPT_NO_RENEGOTIATION);
	unsigned maxver = BR_TLS12;
	if (getenv("BEARSSL_MAXVER"))
		maxver = (unsigned)strtoul(getenv("BEARSSL_MAXVER"), NULL, 0);
	br_ssl_engine_set_versions(&sc.eng, BR_TLS10, maxver);
	br_ssl_engine_set_suites(&sc.eng, core_suites, sizeof core_suites / sizeof core_suites[0]);
	br_ssl_client_set_default_rsapub(&sc);
	br_ssl_engine_set_default_rsavrfy(&sc.eng);
	br_ssl_engine_set_default_ecdsa(&sc.eng);
	br_ssl_engine_set_hash(&sc.eng, br_md5_ID, &br_md5_vtable);
	br_ssl_engine_set_hash(&sc.eng, br_sha1_ID, &br_sha1_vtable);
	br_ssl_engine_set_hash(&sc.eng, br_sha224_ID, &br_sha224_vtable);
	br_ssl_engine_set_hash(&sc.eng, br_sha256_ID, &br_sha256_vtable);
	br_ssl_engine_set_hash(&sc.eng, br_sha384_ID, &br_sha384_vtable);
	br_ssl_engine_set_hash(&sc.eng, br_sha512_ID, &br_sha512_vtable);
	br_ssl_engine_set_prf10(&sc.eng, &br_tls10_prf);
	br_ssl_engine_set_prf_sha256(&sc.eng, &br_tls12_sha256_prf);
	br_ssl_engine_set_prf_sha384(&sc.eng, &br_tls12_sha384_prf);
	br_ssl_engine_set_default_aes_cbc(&sc.eng);
	br_ssl_engine_set_default_aes_gcm(&sc.eng);
	br_ssl_engine_set_default_aes_ccm(&sc.eng);
	br_ssl_engine_set_default_des_cbc(&sc.eng);
	br_ssl_engine_set_default_chapol(&sc.eng);

	/* setKnownKey: trust exactly this public key. */
	static br_x509_knownkey_context xk;
	static br_x509_minimal_context xm;
	static br_x509_decoder_context dc;
	static br_x509_trust_anchor ta;
	unsigned char *k, *e;
	size_t klen = unhex(keyhex, &k);
	if (strcmp(kt, "ta") == 0) {
		/* setTrustAnchors(new X509List(cert)): the certificate's subject
		   and key become a trust anchor, a CA one if the certificate says so. */
		br_x509_decoder_init(&dc, dn_append, NULL);
		br_x509_decoder_push(&dc, k, klen);
		br_x509_pkey *pk = br_x509_decoder_get_pkey(&dc);
		if (pk == NULL) {
			printf("fail decode certificate: %d\n", br_x509_decoder_last_error(&dc));
			return 1;
		}
		ta.dn.data = dn, ta.dn.len = dnlen;
		ta.flags = br_x509_decoder_isCA(&dc) ? BR_X509_TA_CA : 0;
		ta.pkey = *pk;
		br_x509_minimal_init(&xm, &br_sha256_vtable, &ta, 1);
		br_x509_minimal_set_rsa(&xm, br_ssl_engine_get_rsavrfy(&sc.eng));
		br_x509_minimal_set_ecdsa(&xm, br_ssl_engine_get_ec(&sc.eng), br_ssl_engine_get_ecdsa(&sc.eng));
		br_x509_minimal_set_hash(&xm, br_sha1_ID, &br_sha1_vtable);
		br_x509_minimal_set_hash(&xm, br_sha256_ID, &br_sha256_vtable);
		br_x509_minimal_set_hash(&xm, br_sha384_ID, &br_sha384_vtable);
		br_x509_minimal_set_hash(&xm, br_sha512_ID, &br_sha512_vtable);
		time_t now = time(NULL);
		br_x509_minimal_set_time(&xm, (uint32_t)(now / 86400 + 719528), (uint32_t)(now % 86400));
		br_ssl_engine_set_x509(&sc.eng, &xm.vtable);
	} else if (exphex) {
		size_t elen = unhex(exphex, &e);
		static br_rsa_public_key rk;
		rk.n = k, rk.nlen = klen, rk.e = e, rk.elen = elen;
		br_x509_knownkey_init_rsa(&xk, &rk, BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN);
	} else {
		static br_ec_public_key ek;
		ek.curve = BR_EC_secp256r1, ek.q = k, ek.qlen = klen;
		br_x509_knownkey_init_ec(&xk, &ek, BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN);
	}
	if (strcmp(kt, "ta") != 0)
		br_ssl_engine_set_x509(&sc.eng, &xk.vtable);
	br_ssl_engine_set_buffers_bidi(&sc.eng, ibuf, inlen, obuf, outlen);
	if (!br_ssl_client_reset(&sc, NULL, 0))
		fail("reset");
	br_sslio_init(&io, &sc.eng, sock_read, &fd, sock_write, &fd);

	char line[256], want[64];
	int n = snprintf(line, sizeof line, "INLET/1 id=bearssl boot=%x\n", (unsigned)getpid());
	if (br_sslio_write_all(&io, line, (size_t)n) != 0 || br_sslio_flush(&io) != 0)
		fail("hello");
	readline(line, sizeof line);
	if (strcmp(line, "INLET/1 OK last=0") != 0) {
		printf("fail hello answer %s\n", line);
		return 1;
	}
	long acked = 0;
	for (long seq = 1; seq <= count;) {
		long first = seq;
		for (; seq <= count && seq - first < window; seq++) {
			n = snprintf(line, sizeof line, "%ld t=21.5;h=40;n=%ld\n", seq, seq);
			if (br_sslio_write_all(&io, line, (size_t)n) != 0)
				fail("write");
		}
		if (br_sslio_flush(&io) != 0)
			fail("flush");
		for (long w = first; w < seq; w++) {
			readline(line, sizeof line);
			snprintf(want, sizeof want, "ACK %ld", w);
			if (strcmp(line, want) != 0) {
				printf("fail got %s want %s\n", line, want);
				return 1;
			}
			acked++;
		}
	}
	unsigned version = sc.eng.session.version, suite = sc.eng.session.cipher_suite;
	br_sslio_close(&io);
	close(fd);
	printf("ok acked=%ld version=0x%04x suite=0x%04x\n", acked, version, suite);
	return 0;
}
