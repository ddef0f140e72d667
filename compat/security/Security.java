// The Java client (kafka-clients 4.1.0, from the Kafka distribution's libs/)
// over the TLS and SASL listeners.
//
//   java -cp ... Security SCENARIO...
//
// run.sh sets SEC_<LISTENER> (host:port of PLAINTEXT, SSL, SASL_PLAINTEXT,
// SASL_SSL, MTLS), SEC_CA (PEM truststore) and SEC_CLIENT_PEM (alice's key and
// chain: a PEM keystore), SEC_JWT_GOOD / SEC_JWT_OTHER_KEY (files holding RS256
// tokens). OAUTHBEARER: OAuthBearerLoginModule's unsecured token
// (unsecuredLoginStringClaim_sub), or a token file read by
// OAuthBearerLoginCallbackHandler (sasl.oauthbearer.token.endpoint.url=file:...,
// allowed by the system property org.apache.kafka.sasl.oauthbearer.allowed.urls
// that run.sh sets). One line `RESULT java <scenario> PASS|FAIL detail` per
// scenario; every wait has a deadline.

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.config.SaslConfigs;
import org.apache.kafka.common.config.SslConfigs;
import org.apache.kafka.common.errors.SaslAuthenticationException;
import org.apache.kafka.common.errors.SslAuthenticationException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class Security {
    // What Kafka 4.1 answers a refused SASL login (SaslAuthenticate error_message,
    // SASL_AUTHENTICATION_FAILED): the client throws SaslAuthenticationException with it.
    static final String PLAIN_REFUSED = "Authentication failed: Invalid username or password";
    static final String SCRAM_REFUSED =
        "Authentication failed during authentication due to invalid credentials with SASL mechanism ";
    // A refused OAUTHBEARER token: the error challenge of Kafka's OAuthBearerSaslServer.
    static final String OAUTH_REFUSED = "{\"status\":\"invalid_token\"}";

    record Spec(String listener, String mechanism, String user, String password, boolean cert, String expect) {}

    static final Map<String, Spec> SCENARIOS = Map.ofEntries(
        Map.entry("ssl", new Spec("SSL", null, null, null, false, "ok")),
        Map.entry("sasl-plaintext-plain", new Spec("SASL_PLAINTEXT", "PLAIN", "alice", "alice-secret", false, "ok")),
        Map.entry("sasl-plaintext-scram-sha-256",
            new Spec("SASL_PLAINTEXT", "SCRAM-SHA-256", "alice", "alice-secret", false, "ok")),
        Map.entry("sasl-ssl-scram-sha-512", new Spec("SASL_SSL", "SCRAM-SHA-512", "alice", "alice-secret", false, "ok")),
        Map.entry("sasl-ssl-plain", new Spec("SASL_SSL", "PLAIN", "admin", "admin-secret", false, "ok")),
        Map.entry("mtls", new Spec("MTLS", null, null, null, true, "ok")),
        Map.entry("sasl-plain-wrong-password",
            new Spec("SASL_PLAINTEXT", "PLAIN", "alice", "wrong-secret", false, "sasl")),
        Map.entry("sasl-plain-unknown-user", new Spec("SASL_SSL", "PLAIN", "mallory", "alice-secret", false, "sasl")),
        Map.entry("sasl-scram-wrong-password",
            new Spec("SASL_PLAINTEXT", "SCRAM-SHA-256", "alice", "wrong-secret", false, "sasl")),
        Map.entry("sasl-scram-unknown-user",
            new Spec("SASL_SSL", "SCRAM-SHA-512", "mallory", "alice-secret", false, "sasl")),
        Map.entry("mtls-no-cert", new Spec("MTLS", null, null, null, false, "tls")),
        // OAUTHBEARER: "user" names the token
        Map.entry("oauth-unsecured", new Spec("SASL_PLAINTEXT", "OAUTHBEARER", "unsecured", null, false, "ok")),
        Map.entry("oauth-expired", new Spec("SASL_PLAINTEXT", "OAUTHBEARER", "expired", null, false, "sasl")),
        Map.entry("oauth-jwks", new Spec("SASL_SSL", "OAUTHBEARER", "SEC_JWT_GOOD", null, false, "ok")),
        Map.entry("oauth-jwks-wrong-key",
            new Spec("SASL_SSL", "OAUTHBEARER", "SEC_JWT_OTHER_KEY", null, false, "sasl")));

    static final String OAUTH_MODULE = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule";

    static void oauth(Properties p, String token) {
        p.put(SaslConfigs.SASL_MECHANISM, "OAUTHBEARER");
        switch (token) {
            case "unsecured" -> p.put(SaslConfigs.SASL_JAAS_CONFIG,
                OAUTH_MODULE + " required unsecuredLoginStringClaim_sub=\"alice\";");
            // exp an hour before now (and before iat: Kafka checks exp first)
            case "expired" -> p.put(SaslConfigs.SASL_JAAS_CONFIG,
                OAUTH_MODULE + " required unsecuredLoginStringClaim_sub=\"alice\" unsecuredLoginLifetimeSeconds=\"-3600\";");
            default -> {
                p.put(SaslConfigs.SASL_JAAS_CONFIG, OAUTH_MODULE + " required;");
                p.put(SaslConfigs.SASL_LOGIN_CALLBACK_HANDLER_CLASS,
                    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler");
                p.put(SaslConfigs.SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL,
                    java.nio.file.Path.of(System.getenv(token)).toUri().toString());
            }
        }
    }

    static Properties config(Spec s) {
        String protocol = s.listener().equals("MTLS") ? "SSL" : s.listener();
        Properties p = new Properties();
        p.put(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG, System.getenv("SEC_" + s.listener()));
        p.put(CommonClientConfigs.SECURITY_PROTOCOL_CONFIG, protocol);
        if (protocol.contains("SSL")) {
            // ssl.endpoint.identification.algorithm stays https: the IP SAN is checked.
            p.put(SslConfigs.SSL_TRUSTSTORE_TYPE_CONFIG, "PEM");
            p.put(SslConfigs.SSL_TRUSTSTORE_LOCATION_CONFIG, System.getenv("SEC_CA"));
        }
        if (s.cert()) {
            p.put(SslConfigs.SSL_KEYSTORE_TYPE_CONFIG, "PEM");
            p.put(SslConfigs.SSL_KEYSTORE_LOCATION_CONFIG, System.getenv("SEC_CLIENT_PEM"));
        }
        if ("OAUTHBEARER".equals(s.mechanism())) {
            oauth(p, s.user());
        } else if (s.mechanism() != null) {
            String module = s.mechanism().equals("PLAIN")
                ? "org.apache.kafka.common.security.plain.PlainLoginModule"
                : "org.apache.kafka.common.security.scram.ScramLoginModule";
            p.put(SaslConfigs.SASL_MECHANISM, s.mechanism());
            p.put(SaslConfigs.SASL_JAAS_CONFIG,
                module + " required username=\"" + s.user() + "\" password=\"" + s.password() + "\";");
        }
        p.put(CommonClientConfigs.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        p.put(CommonClientConfigs.DEFAULT_API_TIMEOUT_MS_CONFIG, "20000");
        p.put(CommonClientConfigs.RECONNECT_BACKOFF_MS_CONFIG, "200");
        p.put(CommonClientConfigs.RECONNECT_BACKOFF_MAX_MS_CONFIG, "1000");
        return p;
    }

    static String roundTrip(String name, Spec s) throws Exception {
        Properties base = config(s);
        String topic = "sec-java-" + name + "-" + UUID.randomUUID().toString().substring(0, 8);
        try (Admin admin = Admin.create(base)) {
            admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
        }
        Properties pp = (Properties) base.clone();
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "20000");
        pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
        try (KafkaProducer<String, String> producer =
                 new KafkaProducer<>(pp, new StringSerializer(), new StringSerializer())) {
            for (int i = 0; i < 5; i++) {
                producer.send(new ProducerRecord<>(topic, "k" + i, name + "-" + i)).get(30, TimeUnit.SECONDS);
            }
        }
        Properties cp = (Properties) base.clone();
        cp.put(ConsumerConfig.GROUP_ID_CONFIG, topic);
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        List<String> got = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer =
                 new KafkaConsumer<>(cp, new StringDeserializer(), new StringDeserializer())) {
            consumer.subscribe(Set.of(topic));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (got.size() < 5 && System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(300))) {
                    got.add(r.key() + "=" + r.value());
                }
            }
            consumer.commitSync(Duration.ofSeconds(15));
        }
        List<String> want = new ArrayList<>();
        for (int i = 0; i < 5; i++) want.add("k" + i + "=" + name + "-" + i);
        if (!got.equals(want)) throw new AssertionError("consumed " + got + ", want " + want);
        return "5 records via " + s.listener() + (s.mechanism() != null ? " " + s.mechanism() : "")
            + ", topic " + topic + ", group commit";
    }

    /** The broker refuses the client: the admin client's first call fails with the reason. */
    static boolean refused(Spec s, StringBuilder detail) {
        try (Admin admin = Admin.create(config(s))) {
            try {
                var nodes = admin.describeCluster().nodes().get(25, TimeUnit.SECONDS);
                detail.append("describeCluster answered: ").append(nodes);
                return false;
            } catch (ExecutionException e) {
                Throwable cause = e.getCause();
                for (Throwable c = cause; c != null; c = c.getCause()) {
                    if (detail.length() > 0) detail.append(" <- ");
                    detail.append(c.getClass().getName()).append(": ").append(c.getMessage());
                }
                if (s.expect().equals("sasl")) {
                    String want = switch (s.mechanism()) {
                        case "PLAIN" -> PLAIN_REFUSED;
                        case "OAUTHBEARER" -> OAUTH_REFUSED;
                        default -> SCRAM_REFUSED + s.mechanism();
                    };
                    return cause instanceof SaslAuthenticationException && want.equals(cause.getMessage());
                }
                return cause instanceof SslAuthenticationException;
            } catch (Exception e) {
                detail.append(e);
                return false;
            }
        }
    }

    public static void main(String[] args) {
        List<String> names = args.length > 0 ? List.of(args) : new ArrayList<>(SCENARIOS.keySet());
        int failed = 0;
        for (String name : names) {
            Spec s = SCENARIOS.get(name);
            boolean ok;
            String detail;
            try {
                if (s.expect().equals("ok")) {
                    detail = roundTrip(name, s);
                    ok = true;
                } else {
                    StringBuilder sb = new StringBuilder();
                    ok = refused(s, sb);
                    detail = sb.toString();
                }
            } catch (Exception | AssertionError e) {
                ok = false;
                detail = e.toString();
                e.printStackTrace();
            }
            System.out.println("RESULT java " + name + " " + (ok ? "PASS" : "FAIL") + " "
                + detail.replaceAll("\\s+", " "));
            System.out.flush();
            if (!ok) failed++;
        }
        System.exit(failed > 0 ? 1 : 0);
    }
}
