import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The transactional client of compat/kafka-tools/run.sh's kafka-transactions.sh
 * scenarios, compiled against the Kafka distribution's libs/.
 *
 *   java Txns BOOTSTRAP
 *
 * 1. Creates topic kt-txn (1 partition).
 * 2. Transactional id kt-txn-done: one transaction of 3 records to kt-txn-0,
 *    committed (offsets 0-2, its commit marker at 3).
 * 3. Transactional id kt-txn-open (transaction.timeout.ms 900000, the
 *    broker's maximum): begins a transaction, produces 5 records to kt-txn-0
 *    (offsets 4-8) and flushes them, and neither commits nor aborts: the
 *    transaction hangs open. Prints
 *      OPEN 4 5
 *      READY
 *    (its first offset and record count).
 * 4. For each stdin line "check": a read_committed consumer's end offset of
 *    kt-txn-0 (the last stable offset), a read_uncommitted one's (the high
 *    watermark) and the values a read_committed consumer reads from the
 *    start up to that LSO:
 *      CHECK lso hw value,value,...
 * 5. When stdin ends: closes the open producer without waiting
 *    (close(Duration.ZERO) skips the abort a graceful close would send), so
 *    the transaction is left to the coordinator.
 */
public class Txns {
    static final String TOPIC = "kt-txn";
    static final TopicPartition TP = new TopicPartition(TOPIC, 0);

    static KafkaProducer<String, String> producer(String bootstrap, String txnId) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
        p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, 900000);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        return new KafkaProducer<>(p);
    }

    static KafkaConsumer<String, String> consumer(String bootstrap, String isolation) {
        Properties c = new Properties();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        c.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        c.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        c.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        return new KafkaConsumer<>(c);
    }

    static long endOffset(String bootstrap, String isolation) {
        try (KafkaConsumer<String, String> c = consumer(bootstrap, isolation)) {
            Map<TopicPartition, Long> ends = c.endOffsets(List.of(TP), Duration.ofSeconds(30));
            return ends.get(TP);
        }
    }

    /** The values a read_committed consumer reads from offset 0 up to {@code lso}. */
    static List<String> readCommitted(String bootstrap, long lso) {
        List<String> values = new ArrayList<>();
        try (KafkaConsumer<String, String> c = consumer(bootstrap, "read_committed")) {
            c.assign(List.of(TP));
            c.seekToBeginning(List.of(TP));
            long deadline = System.currentTimeMillis() + 30000;
            while (c.position(TP, Duration.ofSeconds(30)) < lso && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    values.add(r.value());
                }
            }
        }
        return values;
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin admin = Admin.create(ap)) {
            admin.createTopics(List.of(new NewTopic(TOPIC, 1, (short) 1))).all().get();
        }
        try (KafkaProducer<String, String> done = producer(bootstrap, "kt-txn-done")) {
            done.initTransactions();
            done.beginTransaction();
            for (int i = 0; i < 3; i++) {
                done.send(new ProducerRecord<>(TOPIC, 0, null, "done-" + i));
            }
            done.commitTransaction();
        }
        KafkaProducer<String, String> open = producer(bootstrap, "kt-txn-open");
        open.initTransactions();
        open.beginTransaction();
        long first = -1;
        for (int i = 0; i < 5; i++) {
            long offset = open.send(new ProducerRecord<>(TOPIC, 0, null, "open-" + i)).get().offset();
            if (first < 0) {
                first = offset;
            }
        }
        System.out.println("OPEN " + first + " 5");
        System.out.println("READY");
        System.out.flush();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.trim().equals("check")) {
                long lso = endOffset(bootstrap, "read_committed");
                long hw = endOffset(bootstrap, "read_uncommitted");
                List<String> values = readCommitted(bootstrap, lso);
                System.out.println("CHECK " + lso + " " + hw + " " + String.join(",", values));
                System.out.flush();
            }
        }
        open.close(Duration.ZERO);
    }
}
