import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The client side of compat/kafka-tools/run.sh, compiled against the Kafka
 * distribution's libs/ (one JVM for every commit the scenarios check).
 *
 *   java Groups BOOTSTRAP
 *
 * 1. Creates topics kt-t0..kt-t2 (4 partitions each) and kt-members (4).
 * 2. Commits, through Admin.alterConsumerGroupOffsets (OffsetCommit with
 *    generation -1, no member), two rounds of offsets for groups kt-g0..kt-g4 x
 *    the three topics x 4 partitions, each with its own offset and metadata
 *    string; prints every commit as
 *      COMMIT group topic partition offset metadata
 *    in commit order.
 * 3. Produces 10 records to each partition of kt-members; two consumers
 *    (client ids kt-member-a, kt-member-b, classic protocol) join group
 *    kt-members-group until both hold partitions of one generation, each
 *    commits offset 4 on its partitions; prints
 *      MEMBER client-id member-id partition,partition...
 *      READY generation
 *    and keeps both members in the group (heartbeats through poll) until
 *    its stdin ends, then closes them.
 */
public class Groups {
    static final int GROUPS = 5;
    static final int TOPICS = 3;
    static final int PARTITIONS = 4;
    static final String MEMBERS_TOPIC = "kt-members";
    static final String MEMBERS_GROUP = "kt-members-group";

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin admin = Admin.create(ap)) {
            List<NewTopic> topics = new ArrayList<>();
            for (int t = 0; t < TOPICS; t++) {
                topics.add(new NewTopic("kt-t" + t, PARTITIONS, (short) 1));
            }
            topics.add(new NewTopic(MEMBERS_TOPIC, PARTITIONS, (short) 1));
            admin.createTopics(topics).all().get(60, TimeUnit.SECONDS);

            for (int round = 0; round < 2; round++) {
                for (int g = 0; g < GROUPS; g++) {
                    Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                    List<String> lines = new ArrayList<>();
                    for (int t = 0; t < TOPICS; t++) {
                        for (int p = 0; p < PARTITIONS; p++) {
                            long offset = 10000L * round + 1000L * g + 100L * t + p + 1;
                            String meta = "r" + round + "-g" + g + "-t" + t + "-p" + p;
                            offsets.put(new TopicPartition("kt-t" + t, p), new OffsetAndMetadata(offset, meta));
                            lines.add("COMMIT kt-g" + g + " kt-t" + t + " " + p + " " + offset + " " + meta);
                        }
                    }
                    admin.alterConsumerGroupOffsets("kt-g" + g, offsets).all().get(60, TimeUnit.SECONDS);
                    lines.forEach(System.out::println);
                }
            }
        }
        System.out.flush();

        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
            for (int p = 0; p < PARTITIONS; p++) {
                for (int i = 0; i < 10; i++) {
                    producer.send(new ProducerRecord<>(MEMBERS_TOPIC, p, "k" + i, "v" + i));
                }
            }
            producer.flush();
        }

        KafkaConsumer<String, String> a = consumer(bootstrap, "kt-member-a");
        KafkaConsumer<String, String> b = consumer(bootstrap, "kt-member-b");
        try {
            a.subscribe(List.of(MEMBERS_TOPIC));
            b.subscribe(List.of(MEMBERS_TOPIC));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (true) {
                a.poll(Duration.ofMillis(50));
                b.poll(Duration.ofMillis(50));
                int ga = a.groupMetadata().generationId();
                int gb = b.groupMetadata().generationId();
                if (!a.assignment().isEmpty() && !b.assignment().isEmpty()
                        && a.assignment().size() + b.assignment().size() == PARTITIONS && ga == gb && ga > 0) {
                    break;
                }
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("no stable 2-member assignment within 60 s: a=" + a.assignment()
                            + " gen " + ga + ", b=" + b.assignment() + " gen " + gb);
                }
            }
            commitFour(a);
            commitFour(b);
            member("kt-member-a", a);
            member("kt-member-b", b);
            System.out.println("READY " + a.groupMetadata().generationId());
            System.out.flush();

            // Keep both members alive until stdin ends (the script closes it
            // after the tools ran); the deadline guards against a lost script.
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            Thread reader = new Thread(() -> {
                try {
                    while (in.readLine() != null) {
                        // drain
                    }
                } catch (Exception e) {
                    // stdin gone: the same as its end
                }
            });
            reader.setDaemon(true);
            reader.start();
            long stop = System.nanoTime() + TimeUnit.SECONDS.toNanos(300);
            while (reader.isAlive() && System.nanoTime() < stop) {
                a.poll(Duration.ofMillis(100));
                b.poll(Duration.ofMillis(100));
            }
        } finally {
            a.close();
            b.close();
        }
    }

    static KafkaConsumer<String, String> consumer(String bootstrap, String clientId) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, MEMBERS_GROUP);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
        p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "1");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        return new KafkaConsumer<>(p);
    }

    static void commitFour(KafkaConsumer<String, String> c) {
        Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
        for (TopicPartition tp : c.assignment()) {
            offsets.put(tp, new OffsetAndMetadata(4));
        }
        c.commitSync(offsets, Duration.ofSeconds(30));
    }

    static void member(String clientId, KafkaConsumer<String, String> c) {
        List<Integer> parts = new ArrayList<>();
        for (TopicPartition tp : c.assignment()) {
            parts.add(tp.partition());
        }
        parts.sort(null);
        StringBuilder sb = new StringBuilder();
        for (int p : parts) {
            sb.append(sb.length() == 0 ? "" : ",").append(p);
        }
        System.out.println("MEMBER " + clientId + " " + c.groupMetadata().memberId() + " " + sb);
    }
}
