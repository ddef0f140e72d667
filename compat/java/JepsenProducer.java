// One producer of the crash tests' Jepsen-style transaction checker
// (compat/crash/jepsen.rs), as the Java client 4.1: against a broker that
// finalizes transaction.version 2 it uses KIP-890's protocol (partitions
// added by Produce, the epoch bumped by every EndTxn).
//
//   java -cp ... JepsenProducer BOOTSTRAP TRANSACTIONAL_ID PLAN HISTORY DEADLINE_MS PACE_MS
//
// PLAN holds one transaction per line, `<n> <commit|abort> <partition>:<key>:<value> ...`
// (written by the supervisor, so the workload has one definition). HISTORY
// gets one line per step, appended before the step it names: `begin <n>`,
// `commit <n>` (about to ask for the commit), then the outcome once known:
// `committed`, `aborted`, `abandoned` (the producer was lost before its
// commit was asked) or `unknown` (asked, then lost). A restarted producer
// continues after the last transaction it began. Errors are handled as an
// application does: a timed-out commit or abort is called again, an
// abortable error aborts, a fatal one (fenced, out of order, ...) closes
// the producer and opens a new one, whose initTransactions fences the old.
// A transaction takes at least PACE_MS (the producer waits out the rest),
// so the supervisor's kills land while this producer is still running.

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.errors.AuthorizationException;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.OutOfOrderSequenceException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.errors.UnsupportedVersionException;
import org.apache.kafka.common.serialization.StringSerializer;

public class JepsenProducer {
    record Write(int partition, String key, String value) {}

    record Txn(int n, boolean commit, List<Write> writes) {}

    static String bootstrap;
    static String transactionalId;
    static Path history;
    static long deadline;
    static int instances;

    static void note(String line) throws IOException {
        Files.write(history, (line + "\n").getBytes(StandardCharsets.UTF_8),
                StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }

    static KafkaProducer<String, String> open() {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId);
        p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "10000");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "2");
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "10000");
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "5000");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "10000");
        p.put(ProducerConfig.RETRY_BACKOFF_MS_CONFIG, "50");
        p.put(ProducerConfig.RECONNECT_BACKOFF_MS_CONFIG, "50");
        p.put(ProducerConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "250");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        instances++;
        while (true) {
            KafkaProducer<String, String> producer = new KafkaProducer<>(p);
            try {
                producer.initTransactions();
                return producer;
            } catch (TimeoutException e) {
                // The broker is down or its coordinator still loading.
                producer.close(Duration.ZERO);
                if (System.currentTimeMillis() > deadline) throw e;
            }
        }
    }

    static boolean fatal(KafkaException e) {
        return e instanceof ProducerFencedException || e instanceof OutOfOrderSequenceException
                || e instanceof AuthorizationException || e instanceof UnsupportedVersionException
                || e instanceof InvalidProducerEpochException;
    }

    /** Runs one transaction; returns its outcome (the producer is unusable after abandoned/unknown). */
    static String run(KafkaProducer<String, String> producer, Txn txn) throws IOException {
        boolean commitAsked = false;
        try {
            producer.beginTransaction();
            for (Write w : txn.writes()) {
                producer.send(new ProducerRecord<>("jepsen", w.partition(), w.key(), w.value()));
            }
            if (txn.commit()) {
                commitAsked = true;
                note("commit " + txn.n());
                while (true) {
                    try {
                        producer.commitTransaction();
                        return "committed";
                    } catch (TimeoutException e) {
                        if (System.currentTimeMillis() > deadline) return "unknown";
                    }
                }
            }
            producer.flush();
        } catch (KafkaException e) {
            if (fatal(e)) {
                System.err.println("jepsen java " + txn.n() + ": fatal: " + e);
                return commitAsked ? "unknown" : "abandoned";
            }
            System.err.println("jepsen java " + txn.n() + ": " + e + "; aborting");
        }
        while (true) {
            try {
                producer.abortTransaction();
                return "aborted";
            } catch (TimeoutException e) {
                if (System.currentTimeMillis() > deadline) return commitAsked ? "unknown" : "abandoned";
            } catch (KafkaException e) {
                System.err.println("jepsen java " + txn.n() + ": abort: " + e);
                return commitAsked ? "unknown" : "abandoned";
            }
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 6) {
            System.err.println("usage: JepsenProducer BOOTSTRAP TRANSACTIONAL_ID PLAN HISTORY DEADLINE_MS PACE_MS");
            System.exit(2);
        }
        bootstrap = args[0];
        transactionalId = args[1];
        history = Path.of(args[3]);
        deadline = System.currentTimeMillis() + Long.parseLong(args[4]);
        long pace = Long.parseLong(args[5]);
        List<Txn> plan = new ArrayList<>();
        for (String line : Files.readAllLines(Path.of(args[2]))) {
            String[] f = line.split(" ");
            List<Write> writes = new ArrayList<>();
            for (int i = 2; i < f.length; i++) {
                String[] w = f[i].split(":", 3);
                writes.add(new Write(Integer.parseInt(w[0]), w[1], w[2]));
            }
            plan.add(new Txn(Integer.parseInt(f[0]), f[1].equals("commit"), writes));
        }
        int first = 0;
        if (Files.exists(history)) {
            for (String line : Files.readAllLines(history)) {
                if (line.startsWith("begin ")) first = Math.max(first, Integer.parseInt(line.substring(6)) + 1);
            }
        }
        long started = System.currentTimeMillis();
        KafkaProducer<String, String> producer = open();
        for (Txn txn : plan) {
            if (txn.n() < first) continue;
            if (System.currentTimeMillis() > deadline) {
                System.err.println("jepsen java: out of time at transaction " + txn.n());
                System.exit(1);
            }
            long begun = System.currentTimeMillis();
            note("begin " + txn.n());
            String outcome = run(producer, txn);
            note(outcome + " " + txn.n());
            if (outcome.equals("abandoned") || outcome.equals("unknown")) {
                producer.close(Duration.ZERO);
                producer = open();
            }
            long left = begun + pace - System.currentTimeMillis();
            if (left > 0) Thread.sleep(left);
        }
        producer.close(Duration.ofSeconds(5));
        System.out.println("java producer: transactions " + first + ".." + plan.size() + ", " + instances
                + " instance(s), " + (System.currentTimeMillis() - started) / 100 / 10.0 + " s");
    }
}
