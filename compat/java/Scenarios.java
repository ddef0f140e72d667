// The Java client (kafka-clients 4.1.0) against a running strom broker.
//
//   java -cp ... Scenarios BOOTSTRAP [scenario...]
//
// Prints one `RESULT java <scenario> PASS|FAIL [detail]` line per scenario and
// exits non-zero when any scenario failed. Every scenario uses its own topic
// (and group), waits on conditions with deadlines, and asserts what it got
// back. Producers keep the client's defaults (acks=all,
// enable.idempotence=true) unless a scenario says otherwise; groups use the
// default classic protocol. Env STROM_LOG_DIRS=<data dir>/logs enables the
// on-disk checks (strom keeps batches byte for byte as produced, so a stored
// batch header shows the codec and producer id the client really sent).

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Properties;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BooleanSupplier;
import java.util.function.Predicate;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import java.util.stream.Stream;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.DescribeConfigsOptions;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.ListGroupsOptions;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicCollection;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class Scenarios {
    /** The client column of the RESULT lines (java, or e.g. java-3-nodes against a cluster). */
    static final String CLIENT = System.getProperty("strom.client", "java");
    static final String CLIENT_ID = "strom-compat-java";
    static final long SCENARIO_TIMEOUT_MS = 90_000;

    static String bootstrap;
    static Admin admin;

    // ------------------------------------------------------------ helpers

    static final class Failure extends RuntimeException {
        private static final long serialVersionUID = 1L;

        Failure(String msg) {
            super(msg);
        }
    }

    static void check(boolean cond, String what) {
        if (!cond) throw new Failure(what);
    }

    static void eq(Object want, Object got, String what) {
        if (!Objects.equals(want, got)) throw new Failure(what + ": want " + want + ", got " + got);
    }

    /** Poll `cond` until true or the deadline passes. */
    static void waitFor(String what, long timeoutMs, BooleanSupplier cond) throws InterruptedException {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (!cond.getAsBoolean()) {
            if (System.currentTimeMillis() >= deadline) throw new Failure("timed out after " + timeoutMs + " ms waiting for " + what);
            Thread.sleep(50);
        }
    }

    static byte[] b(String s) {
        return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
    }

    static String s(byte[] b) {
        return b == null ? null : new String(b, StandardCharsets.UTF_8);
    }

    static <T> T get(org.apache.kafka.common.KafkaFuture<T> f) throws Exception {
        try {
            return f.get(30, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof Exception) throw (Exception) e.getCause();
            throw e;
        }
    }

    static Properties common() {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("client.id", CLIENT_ID);
        p.put("request.timeout.ms", "15000");
        p.put("default.api.timeout.ms", "20000");
        p.put("retry.backoff.ms", "50");
        p.put("reconnect.backoff.ms", "50");
        p.put("reconnect.backoff.max.ms", "1000");
        return p;
    }

    static KafkaProducer<byte[], byte[]> producer(Map<String, String> extra) {
        Properties p = common();
        p.remove("default.api.timeout.ms");
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "20000");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.putAll(extra);
        return new KafkaProducer<>(p);
    }

    static KafkaConsumer<byte[], byte[]> consumer(String groupId, Map<String, String> extra) {
        Properties p = common();
        if (groupId != null) p.put(ConsumerConfig.GROUP_ID_CONFIG, groupId);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "300");
        p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "10000");
        p.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, "200");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.putAll(extra);
        return new KafkaConsumer<>(p);
    }

    static void createTopic(String topic, int partitions, Map<String, String> configs) throws Exception {
        get(admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1).configs(configs))).all());
    }

    static List<TopicPartition> partitions(String topic, int n) {
        return IntStream.range(0, n).mapToObj(i -> new TopicPartition(topic, i)).collect(Collectors.toList());
    }

    /** Poll (already assigned or subscribed) `c` until `done` holds for what it got. */
    static List<ConsumerRecord<byte[], byte[]>> pollUntil(KafkaConsumer<byte[], byte[]> c, long timeoutMs,
            Predicate<List<ConsumerRecord<byte[], byte[]>>> done) {
        List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (!done.test(got)) {
            if (System.currentTimeMillis() >= deadline)
                throw new Failure("timed out after " + timeoutMs + " ms polling (received " + got.size() + ")");
            for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(100))) got.add(r);
        }
        return got;
    }

    /** Read `topic` from the beginning of every partition, without a group. */
    static List<ConsumerRecord<byte[], byte[]>> readAll(String topic, int partitions, int n) {
        try (KafkaConsumer<byte[], byte[]> c = consumer(null, Map.of())) {
            c.assign(partitions(topic, partitions));
            c.seekToBeginning(partitions(topic, partitions));
            List<ConsumerRecord<byte[], byte[]>> got = pollUntil(c, 20_000, r -> r.size() >= n);
            eq(n, got.size(), "records read from " + topic);
            return got;
        }
    }

    static void sendAll(KafkaProducer<byte[], byte[]> p, List<ProducerRecord<byte[], byte[]>> records,
            List<RecordMetadata> out) throws Exception {
        List<Future<RecordMetadata>> fs = new ArrayList<>();
        for (ProducerRecord<byte[], byte[]> r : records) fs.add(p.send(r));
        p.flush();
        for (Future<RecordMetadata> f : fs) {
            try {
                RecordMetadata m = f.get(30, TimeUnit.SECONDS);
                if (out != null) out.add(m);
            } catch (ExecutionException e) {
                throw new Failure("send failed: " + e.getCause());
            }
        }
    }

    record StoredBatch(long baseOffset, int magic, int attributes, long producerId, short producerEpoch,
            int baseSequence, int records) {
        int codec() {
            return attributes & 7;
        }
    }

    /** Every stored batch of one partition, read from the broker's segment files. */
    static List<StoredBatch> storedBatches(String topic, int partition) throws Exception {
        Path dir = Path.of(System.getenv("STROM_LOG_DIRS"), topic + "-" + partition);
        List<Path> files;
        try (Stream<Path> st = Files.list(dir)) {
            files = st.filter(f -> f.toString().endsWith(".log")).sorted().collect(Collectors.toList());
        }
        List<StoredBatch> out = new ArrayList<>();
        for (Path f : files) {
            ByteBuffer buf = ByteBuffer.wrap(Files.readAllBytes(f));
            int pos = 0;
            while (pos + 61 <= buf.limit()) {
                int len = buf.getInt(pos + 8);
                if (len <= 0) break;
                out.add(new StoredBatch(buf.getLong(pos), buf.get(pos + 16), buf.getShort(pos + 21), buf.getLong(pos + 43),
                        buf.getShort(pos + 51), buf.getInt(pos + 53), buf.getInt(pos + 57)));
                pos += 12 + len;
            }
        }
        return out;
    }

    static boolean diskChecks() {
        String dirs = System.getenv("STROM_LOG_DIRS");
        return dirs != null && !dirs.isEmpty();
    }

    // ---------------------------------------------------------- scenarios

    static String metadata() throws Exception {
        String topic = "java-metadata";
        createTopic(topic, 3, Map.of());
        DescribeClusterResult cluster = admin.describeCluster();
        Collection<Node> nodes = get(cluster.nodes());
        eq(1, nodes.size(), "broker count");
        Node node = nodes.iterator().next();
        eq(bootstrap, node.host() + ":" + node.port(), "advertised address");
        eq(node.id(), get(cluster.controller()).id(), "controller");
        String clusterId = get(cluster.clusterId());
        check(clusterId != null && !clusterId.isEmpty(), "cluster id");

        TopicDescription d = get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
        eq(3, d.partitions().size(), "partitions");
        check(!d.isInternal(), "not internal");
        check(!Uuid.ZERO_UUID.equals(d.topicId()), "topic id set");
        for (TopicPartitionInfo p : d.partitions()) {
            eq(node.id(), p.leader().id(), "leader of " + p.partition());
            eq(List.of(node.id()), p.replicas().stream().map(Node::id).collect(Collectors.toList()), "replicas");
            eq(List.of(node.id()), p.isr().stream().map(Node::id).collect(Collectors.toList()), "isr");
        }
        check(get(admin.listTopics().names()).contains(topic), "listTopics has the topic");

        // Producer metadata, and auto-creation on first produce.
        String auto = "java-metadata-auto";
        try (KafkaProducer<byte[], byte[]> p = producer(Map.of())) {
            eq(3, p.partitionsFor(topic).size(), "producer partitionsFor");
            RecordMetadata m = p.send(new ProducerRecord<>(auto, b("x"))).get(30, TimeUnit.SECONDS);
            eq(0L, m.offset(), "first offset in auto-created topic");
        }
        eq(1, get(admin.describeTopics(List.of(auto)).allTopicNames()).get(auto).partitions().size(),
                "auto-created topic partitions");

        // Lookup by topic id (Metadata v10+; the admin client sends the id
        // with an empty name, and Kafka resolves any non-zero id by id).
        try {
            Map<Uuid, TopicDescription> byId = get(admin.describeTopics(TopicCollection.ofTopicIds(List.of(d.topicId()))).allTopicIds());
            eq(topic, byId.get(d.topicId()).name(), "describe by topic id");
        } catch (org.apache.kafka.common.errors.ApiException e) {
            throw new Failure("describeTopics(ofTopicIds(" + d.topicId() + ")): " + e);
        }
        return "node " + node.id() + ", 3 partitions, topic id " + d.topicId() + ", auto-create ok";
    }

    static String adminTopics() throws Exception {
        String topic = "java-admin-topics";
        check(!get(admin.listTopics().names()).contains(topic), "topic absent before create");
        createTopic(topic, 2, Map.of("retention.ms", "3600000"));
        try {
            createTopic(topic, 2, Map.of());
            throw new Failure("second create did not fail");
        } catch (TopicExistsException expected) {
            // ok
        }
        check(get(admin.listTopics().names()).contains(topic), "listTopics has the topic");
        get(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(4))).all());
        eq(4, get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic).partitions().size(),
                "partitions after createPartitions");
        get(admin.deleteTopics(List.of(topic)).all());
        waitFor("topic gone from listTopics", 10_000, () -> {
            try {
                return !get(admin.listTopics().names()).contains(topic);
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        });
        try {
            get(admin.describeTopics(List.of(topic)).allTopicNames());
            throw new Failure("describe of a deleted topic succeeded");
        } catch (UnknownTopicOrPartitionException expected) {
            // ok
        }
        return "create, duplicate create -> TopicExists, createPartitions 2->4, delete, describe -> UnknownTopic";
    }

    static String keyedOrder() throws Exception {
        String topic = "java-keyed-order";
        createTopic(topic, 3, Map.of());
        int keys = 12;
        int total = 360;
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        for (int j = 0; j < total; j++) {
            String key = "key-" + (j % keys);
            records.add(new ProducerRecord<>(topic, b(key), b(key + "|" + (j / keys))));
        }
        List<RecordMetadata> metas = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> p = producer(Map.of(ProducerConfig.LINGER_MS_CONFIG, "5"))) {
            sendAll(p, records, metas);
        }
        Map<String, Integer> sentPartition = new HashMap<>();
        for (int j = 0; j < total; j++) {
            String key = "key-" + (j % keys);
            Integer prev = sentPartition.putIfAbsent(key, metas.get(j).partition());
            check(prev == null || prev == metas.get(j).partition(), key + " produced to two partitions");
        }
        List<ConsumerRecord<byte[], byte[]>> got = readAll(topic, 3, total);
        Map<String, List<Integer>> seqs = new HashMap<>();
        Map<Integer, List<Long>> offsets = new HashMap<>();
        for (ConsumerRecord<byte[], byte[]> r : got) {
            String key = s(r.key());
            String[] v = s(r.value()).split("\\|");
            eq(key, v[0], "value belongs to its key");
            eq(sentPartition.get(key), r.partition(), key + " partition (sticky)");
            seqs.computeIfAbsent(key, k -> new ArrayList<>()).add(Integer.parseInt(v[1]));
            offsets.computeIfAbsent(r.partition(), k -> new ArrayList<>()).add(r.offset());
        }
        eq(keys, seqs.size(), "keys seen");
        List<Integer> want = IntStream.range(0, total / keys).boxed().collect(Collectors.toList());
        for (Map.Entry<String, List<Integer>> e : seqs.entrySet()) eq(want, e.getValue(), e.getKey() + " order");
        for (Map.Entry<Integer, List<Long>> e : offsets.entrySet()) {
            List<Long> dense = LongStreamRange(e.getValue().size());
            eq(dense, e.getValue(), "partition " + e.getKey() + " offsets dense and in order");
        }
        Set<Integer> used = new TreeSet<>(sentPartition.values());
        check(used.size() >= 2, "keys spread over " + used);
        return total + " msgs, " + keys + " keys over partitions " + used;
    }

    static List<Long> LongStreamRange(int n) {
        List<Long> l = new ArrayList<>();
        for (long i = 0; i < n; i++) l.add(i);
        return l;
    }

    static String headersTimestampsNulls() throws Exception {
        String topic = "java-headers-timestamps-nulls";
        createTopic(topic, 1, Map.of());
        long ts = System.currentTimeMillis() / 1000 * 1000 - 3_600_000;
        byte[] big = new byte[500 * 1024];
        new Random(42).nextBytes(big);
        RecordHeaders headers = new RecordHeaders();
        headers.add("trace-id", b("abc-123"));
        headers.add("bin", new byte[] {0, 1, 2, (byte) 255});
        headers.add("multi", b("one"));
        headers.add("multi", b("two"));
        headers.add("empty", new byte[0]);
        headers.add("null-value", null);
        List<ProducerRecord<byte[], byte[]>> records = List.of(
                new ProducerRecord<>(topic, 0, ts, b("hdr"), b("with-headers"), headers),
                new ProducerRecord<>(topic, 0, ts + 1, null, b("null-key")),
                new ProducerRecord<>(topic, 0, ts + 2, b("tombstone"), (byte[]) null),
                new ProducerRecord<>(topic, 0, ts + 3, b("big"), big));
        try (KafkaProducer<byte[], byte[]> p = producer(Map.of())) {
            sendAll(p, records, null);
        }
        List<ConsumerRecord<byte[], byte[]>> got = readAll(topic, 1, 4);
        ConsumerRecord<byte[], byte[]> h = got.get(0), nk = got.get(1), tomb = got.get(2), bg = got.get(3);
        eq("hdr", s(h.key()), "key");
        eq("with-headers", s(h.value()), "value");
        eq(ts, h.timestamp(), "explicit timestamp");
        eq(TimestampType.CREATE_TIME, h.timestampType(), "timestamp type");
        List<String> names = new ArrayList<>();
        for (Header x : h.headers()) names.add(x.key());
        eq(List.of("trace-id", "bin", "multi", "multi", "empty", "null-value"), names, "header keys in order");
        eq("abc-123", s(h.headers().lastHeader("trace-id").value()), "header value");
        check(Arrays.equals(new byte[] {0, 1, 2, (byte) 255}, h.headers().lastHeader("bin").value()), "binary header");
        List<String> multi = new ArrayList<>();
        for (Header x : h.headers().headers("multi")) multi.add(s(x.value()));
        eq(List.of("one", "two"), multi, "repeated header");
        eq(0, h.headers().lastHeader("empty").value().length, "empty header value");
        eq(null, h.headers().lastHeader("null-value").value(), "null header value");
        eq(null, nk.key(), "null key");
        eq("null-key", s(nk.value()), "value with null key");
        eq(ts + 1, nk.timestamp(), "timestamp 2");
        eq("tombstone", s(tomb.key()), "tombstone key");
        eq(null, tomb.value(), "null value");
        eq(ts + 2, tomb.timestamp(), "timestamp 3");
        check(Arrays.equals(big, bg.value()), "500 KB value bytes (got " + (bg.value() == null ? "null" : bg.value().length + " bytes") + ")");
        eq(ts + 3, bg.timestamp(), "timestamp 4");
        eq(List.of(0L, 1L, 2L, 3L), got.stream().map(ConsumerRecord::offset).collect(Collectors.toList()), "offsets");

        // Fetch limits smaller than the 500 KB batch: the first batch is
        // returned whole anyway (KIP-74), so the consumer still makes progress.
        try (KafkaConsumer<byte[], byte[]> c = consumer(null, Map.of(ConsumerConfig.FETCH_MAX_BYTES_CONFIG, "1024",
                ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, "1024"))) {
            TopicPartition tp = new TopicPartition(topic, 0);
            c.assign(List.of(tp));
            c.seek(tp, 3);
            List<ConsumerRecord<byte[], byte[]>> small = pollUntil(c, 20_000, r -> !r.isEmpty());
            check(Arrays.equals(big, small.get(0).value()), "500 KB value with 1 KB fetch limits");
        }
        return "headers (binary, repeated, empty, null), timestamps, null key, null value, 500 KB value (also with 1 KB fetch limits)";
    }

    static String compression(String codec, int codecId) throws Exception {
        String topic = "java-compression-" + codec;
        createTopic(topic, 1, Map.of());
        int n = 200;
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        for (int i = 0; i < n; i++)
            records.add(new ProducerRecord<>(topic, b("k" + i), b(codec + "-" + i + "-" + "the quick brown fox ".repeat(10))));
        try (KafkaProducer<byte[], byte[]> p = producer(Map.of(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec,
                ProducerConfig.LINGER_MS_CONFIG, "20"))) {
            sendAll(p, records, null);
        }
        List<ConsumerRecord<byte[], byte[]>> got = readAll(topic, 1, n);
        for (int i = 0; i < n; i++) {
            eq((long) i, got.get(i).offset(), "offset");
            eq("k" + i, s(got.get(i).key()), "key");
            eq(s(records.get(i).value()), s(got.get(i).value()), "value " + i);
        }
        String disk = "disk check skipped";
        if (diskChecks()) {
            List<StoredBatch> batches = storedBatches(topic, 0);
            check(!batches.isEmpty(), "no stored batches");
            for (StoredBatch sb : batches) {
                eq(2, sb.magic(), "magic");
                eq(codecId, sb.codec(), "stored batch codec at offset " + sb.baseOffset());
            }
            disk = batches.size() + " stored batch(es) with codec " + codecId;
        }
        return n + " msgs round trip, " + disk;
    }

    static String idempotent() throws Exception {
        String topic = "java-idempotent";
        createTopic(topic, 1, Map.of());
        int n = 2000;
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        for (int i = 0; i < n; i++) records.add(new ProducerRecord<>(topic, b("k"), b("m-" + i)));
        // Small batches and 5 in flight: many pipelined sequenced batches.
        List<RecordMetadata> metas = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> p = producer(Map.of(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true",
                ProducerConfig.ACKS_CONFIG, "all", ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, "5",
                ProducerConfig.BATCH_SIZE_CONFIG, "1024", ProducerConfig.LINGER_MS_CONFIG, "0"))) {
            sendAll(p, records, metas);
        }
        for (int i = 0; i < n; i++) eq((long) i, metas.get(i).offset(), "acknowledged offset of record " + i);
        try (KafkaProducer<byte[], byte[]> p = producer(Map.of(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true"))) {
            sendAll(p, List.of(new ProducerRecord<>(topic, b("k"), b("second"))), null);
        }
        List<ConsumerRecord<byte[], byte[]>> got = readAll(topic, 1, n + 1);
        for (int i = 0; i < n; i++) eq("m-" + i, s(got.get(i).value()), "record " + i);
        eq("second", s(got.get(n).value()), "second producer's record");
        String disk = "disk check skipped";
        if (diskChecks()) {
            List<StoredBatch> batches = storedBatches(topic, 0);
            StoredBatch first = batches.get(0);
            check(first.producerId() >= 0, "producer id " + first.producerId());
            int firstProducerBatches = 0;
            for (StoredBatch sb : batches) {
                if (sb.baseOffset() >= n) continue;
                firstProducerBatches++;
                eq(first.producerId(), sb.producerId(), "producer id of batch at " + sb.baseOffset());
                eq(first.producerEpoch(), sb.producerEpoch(), "producer epoch");
                eq((long) sb.baseSequence(), sb.baseOffset(), "base sequence == base offset");
            }
            StoredBatch last = batches.get(batches.size() - 1);
            check(last.producerId() >= 0 && last.producerId() != first.producerId(), "second producer id " + last.producerId());
            eq(0, last.baseSequence(), "second producer's first sequence");
            disk = firstProducerBatches + " batches of pid " + first.producerId() + " with contiguous sequences, second pid "
                    + last.producerId();
        }
        return (n + 1) + " msgs exactly once and in order, " + disk;
    }

    static String groupCommitResume() throws Exception {
        String topic = "java-group-commit-resume";
        String group = "java-group-commit-resume-g";
        createTopic(topic, 1, Map.of());
        int n = 100;
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        for (int i = 0; i < n; i++) records.add(new ProducerRecord<>(topic, b("m-" + i)));
        try (KafkaProducer<byte[], byte[]> p = producer(Map.of())) {
            sendAll(p, records, null);
        }
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<byte[], byte[]> c = consumer(group, Map.of())) {
            c.subscribe(List.of(topic));
            List<ConsumerRecord<byte[], byte[]>> got = pollUntil(c, 20_000, r -> r.size() >= 40);
            eq(0L, got.get(0).offset(), "first consumer starts at earliest");
            c.commitSync(Map.of(tp, new OffsetAndMetadata(40, "after-40")));
            eq(40L, c.committed(Set.of(tp)).get(tp).offset(), "committed() after commitSync");
        }
        Map<TopicPartition, OffsetAndMetadata> committed = get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
        eq(40L, committed.get(tp).offset(), "admin committed offset");
        eq("after-40", committed.get(tp).metadata(), "commit metadata");
        try (KafkaConsumer<byte[], byte[]> c = consumer(group, Map.of())) {
            c.subscribe(List.of(topic));
            List<ConsumerRecord<byte[], byte[]>> got = pollUntil(c, 20_000,
                    r -> !r.isEmpty() && r.get(r.size() - 1).offset() >= n - 1);
            eq(40L, got.get(0).offset(), "second consumer resumes at the committed offset");
            List<String> values = got.stream().map(r -> s(r.value())).collect(Collectors.toList());
            eq(IntStream.range(40, n).mapToObj(i -> "m-" + i).collect(Collectors.toList()), values, "resumed records");
            c.commitSync();
            eq(100L, c.committed(Set.of(tp)).get(tp).offset(), "committed after second consumer");
        }
        return "committed 40 (with metadata), new member resumed at 40, read 60, committed 100";
    }

    static String groupRebalance() throws Exception {
        // The client's default assignors (range first: eager), then
        // cooperative-sticky (incremental: revoke in one rebalance, assign in
        // the next), each on its own topic and group.
        String eager = rebalanceWith("java-group-rebalance", Map.of());
        String coop = rebalanceWith("java-group-rebalance-coop", Map.of(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG,
                "org.apache.kafka.clients.consumer.CooperativeStickyAssignor"));
        return eager + "; " + coop;
    }

    static String rebalanceWith(String topic, Map<String, String> config) throws Exception {
        String group = topic + "-g";
        createTopic(topic, 4, Map.of());
        Set<Integer> all = Set.of(0, 1, 2, 3);
        try (KafkaConsumer<byte[], byte[]> a = consumer(group, config);
                KafkaConsumer<byte[], byte[]> b = consumer(group, config)) {
            a.subscribe(List.of(topic));
            long deadline = System.currentTimeMillis() + 20_000;
            while (!parts(a).equals(all)) {
                if (System.currentTimeMillis() > deadline) throw new Failure("first member never owned all 4: " + parts(a));
                a.poll(Duration.ofMillis(100));
            }
            b.subscribe(List.of(topic));
            List<ConsumerRecord<byte[], byte[]>> gotA = new ArrayList<>(), gotB = new ArrayList<>();
            deadline = System.currentTimeMillis() + 30_000;
            for (;;) {
                a.poll(Duration.ofMillis(50)).forEach(gotA::add);
                b.poll(Duration.ofMillis(50)).forEach(gotB::add);
                Set<Integer> pa = parts(a), pb = parts(b), union = new TreeSet<>(pa);
                union.addAll(pb);
                if (!pa.isEmpty() && !pb.isEmpty() && union.equals(all) && pa.size() + pb.size() == 4) break;
                if (System.currentTimeMillis() > deadline)
                    throw new Failure("no disjoint covering assignment: a=" + pa + " b=" + pb);
            }
            Set<Integer> pa = parts(a), pb = parts(b);
            // The coordinator's view agrees.
            ConsumerGroupDescription d = get(admin.describeConsumerGroups(List.of(group)).all()).get(group);
            eq(GroupState.STABLE, d.groupState(), "described state");
            eq(2, d.members().size(), "members described");
            Set<Set<Integer>> described = new HashSet<>();
            for (MemberDescription m : d.members())
                described.add(m.assignment().topicPartitions().stream().map(TopicPartition::partition).collect(Collectors.toSet()));
            eq(Set.of(pa, pb), described, "described assignments");
            // Records to every partition reach exactly the member that owns it.
            List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
            for (int i = 0; i < 40; i++) records.add(new ProducerRecord<>(topic, i % 4, null, b("m-" + i)));
            try (KafkaProducer<byte[], byte[]> p = producer(Map.of())) {
                sendAll(p, records, null);
            }
            deadline = System.currentTimeMillis() + 20_000;
            while (gotA.size() + gotB.size() < 40) {
                if (System.currentTimeMillis() > deadline)
                    throw new Failure("consumed " + (gotA.size() + gotB.size()) + " of 40 after the rebalance");
                a.poll(Duration.ofMillis(50)).forEach(gotA::add);
                b.poll(Duration.ofMillis(50)).forEach(gotB::add);
            }
            for (ConsumerRecord<byte[], byte[]> r : gotA) check(pa.contains(r.partition()), "a got partition " + r.partition());
            for (ConsumerRecord<byte[], byte[]> r : gotB) check(pb.contains(r.partition()), "b got partition " + r.partition());
            List<String> values = Stream.concat(gotA.stream(), gotB.stream()).map(r -> s(r.value())).sorted().collect(Collectors.toList());
            eq(IntStream.range(0, 40).mapToObj(i -> "m-" + i).sorted().collect(Collectors.toList()), values, "every record once");
            return "a=" + pa + " b=" + pb + " (" + d.partitionAssignor() + "), 40 msgs split " + gotA.size() + "/" + gotB.size();
        }
    }

    static Set<Integer> parts(KafkaConsumer<byte[], byte[]> c) {
        return c.assignment().stream().map(TopicPartition::partition).collect(Collectors.toCollection(TreeSet::new));
    }

    static String offsetsForTimes() throws Exception {
        String topic = "java-offsets-for-times";
        createTopic(topic, 2, Map.of());
        long base = System.currentTimeMillis() / 1000 * 1000 - 600_000;
        // Partition 0: offsets 0..9 at base + i s, except offset 7 at base + 50 s
        // (out of order); partition 1: 3 records at base + 20 s, 21 s, 22 s.
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        for (int i = 0; i < 10; i++)
            records.add(new ProducerRecord<>(topic, 0, base + (i == 7 ? 50_000 : i * 1000L), null, b("p0-" + i)));
        for (int i = 0; i < 3; i++) records.add(new ProducerRecord<>(topic, 1, base + 20_000 + i * 1000L, null, b("p1-" + i)));
        try (KafkaProducer<byte[], byte[]> p = producer(Map.of(ProducerConfig.LINGER_MS_CONFIG, "0"))) {
            for (ProducerRecord<byte[], byte[]> r : records) sendAll(p, List.of(r), null); // one batch each
        }
        TopicPartition p0 = new TopicPartition(topic, 0), p1 = new TopicPartition(topic, 1);
        try (KafkaConsumer<byte[], byte[]> c = consumer(null, Map.of())) {
            expectTimes(c, base - 1000, p0, 0L, base, p1, 0L, base + 20_000, "before everything");
            expectTimes(c, base + 4500, p0, 5L, base + 5000, p1, 0L, base + 20_000, "between records");
            expectTimes(c, base + 5000, p0, 5L, base + 5000, p1, 0L, base + 20_000, "exact timestamp");
            expectTimes(c, base + 21_000, p0, 7L, base + 50_000, p1, 1L, base + 21_000, "first record at/after, out of order");
            expectTimes(c, base + 22_500, p0, 7L, base + 50_000, p1, null, null, "past partition 1");
            expectTimes(c, base + 60_000, p0, null, null, p1, null, null, "past everything");
            eq(Map.of(p0, 0L, p1, 0L), c.beginningOffsets(List.of(p0, p1)), "beginningOffsets");
            eq(Map.of(p0, 10L, p1, 3L), c.endOffsets(List.of(p0, p1)), "endOffsets");
        }
        // Admin ListOffsets: max timestamp (KIP-734, ListOffsets v7+).
        ListOffsetsResult.ListOffsetsResultInfo max = get(admin.listOffsets(Map.of(p0, OffsetSpec.maxTimestamp())).partitionResult(p0));
        eq(7L, max.offset(), "offset of max timestamp");
        eq(base + 50_000, max.timestamp(), "max timestamp");
        ListOffsetsResult.ListOffsetsResultInfo byTs = get(admin.listOffsets(Map.of(p1, OffsetSpec.forTimestamp(base + 20_500))).partitionResult(p1));
        eq(1L, byTs.offset(), "admin listOffsets forTimestamp");
        return "offsetsForTimes before/between/exact/out-of-order/after, begin/end, admin maxTimestamp + forTimestamp";
    }

    static void expectTimes(KafkaConsumer<byte[], byte[]> c, long ts, TopicPartition p0, Long off0, Long ts0,
            TopicPartition p1, Long off1, Long ts1, String what) {
        Map<TopicPartition, OffsetAndTimestamp> res = c.offsetsForTimes(Map.of(p0, ts, p1, ts));
        OffsetAndTimestamp r0 = res.get(p0), r1 = res.get(p1);
        eq(off0, r0 == null ? null : r0.offset(), what + ": p0 offset");
        eq(ts0, r0 == null ? null : r0.timestamp(), what + ": p0 timestamp");
        eq(off1, r1 == null ? null : r1.offset(), what + ": p1 offset");
        eq(ts1, r1 == null ? null : r1.timestamp(), what + ": p1 timestamp");
    }

    static String describeListGroups() throws Exception {
        String topic = "java-describe-list-groups";
        String group = "java-describe-list-groups-g";
        createTopic(topic, 2, Map.of());
        try (KafkaConsumer<byte[], byte[]> c = consumer(group, Map.of())) {
            c.subscribe(List.of(topic));
            long deadline = System.currentTimeMillis() + 20_000;
            while (c.assignment().size() < 2) {
                if (System.currentTimeMillis() > deadline) throw new Failure("member never assigned: " + c.assignment());
                c.poll(Duration.ofMillis(100));
            }
            c.commitSync(Map.of(new TopicPartition(topic, 0), new OffsetAndMetadata(0)));

            GroupListing listed = findGroup(get(admin.listGroups().all()), group);
            check(listed != null, "listGroups() lacks " + group);
            eq("consumer", listed.protocol(), "listed protocol type");
            eq(Optional.of(GroupState.STABLE), listed.groupState(), "listed state");
            check(listed.type().isEmpty() || listed.type().get() == org.apache.kafka.common.GroupType.CLASSIC,
                    "listed type " + listed.type());
            GroupListing consumerListed = findGroup(get(admin.listGroups(ListGroupsOptions.forConsumerGroups()).all()), group);
            check(consumerListed != null, "listGroups(forConsumerGroups) lacks " + group);
            GroupListing stableListed = findGroup(
                    get(admin.listGroups(new ListGroupsOptions().inGroupStates(Set.of(GroupState.STABLE))).all()), group);
            check(stableListed != null, "listGroups(inGroupStates STABLE) lacks " + group);
            GroupListing emptyListed = findGroup(
                    get(admin.listGroups(new ListGroupsOptions().inGroupStates(Set.of(GroupState.EMPTY))).all()), group);
            check(emptyListed == null, "listGroups(inGroupStates EMPTY) lists the stable group");

            ConsumerGroupDescription d = get(admin.describeConsumerGroups(List.of(group)).all()).get(group);
            eq(GroupState.STABLE, d.groupState(), "described state");
            eq(org.apache.kafka.common.GroupType.CLASSIC, d.type(), "described type");
            check(!d.isSimpleConsumerGroup(), "not a simple group");
            eq(1, d.members().size(), "members");
            MemberDescription m = d.members().iterator().next();
            eq(CLIENT_ID, m.clientId(), "member client id");
            check(m.host() != null && !m.host().isEmpty(), "member host");
            eq(Set.of(new TopicPartition(topic, 0), new TopicPartition(topic, 1)), m.assignment().topicPartitions(),
                    "member assignment");
            check(d.partitionAssignor() != null && !d.partitionAssignor().isEmpty(), "assignor");
            check(d.coordinator() != null, "coordinator described");
            eq(get(admin.describeCluster().controller()).id(), d.coordinator().id(), "coordinator is the one broker");
        }
        waitFor("group Empty after the member left", 10_000, () -> {
            try {
                return get(admin.describeConsumerGroups(List.of(group)).all()).get(group).groupState() == GroupState.EMPTY;
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        });
        GroupListing empty = findGroup(get(admin.listGroups().all()), group);
        check(empty != null && empty.groupState().equals(Optional.of(GroupState.EMPTY)), "listed after leave: " + empty);
        get(admin.deleteConsumerGroups(List.of(group)).all());
        check(findGroup(get(admin.listGroups().all()), group) == null, "deleted group still listed");
        Map<TopicPartition, OffsetAndMetadata> offs = get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
        check(offs.isEmpty() || offs.values().stream().allMatch(Objects::isNull), "offsets after delete: " + offs);
        return "listGroups (all / consumer / by state), describe Stable member+assignment, Empty after leave, delete";
    }

    static GroupListing findGroup(Collection<GroupListing> groups, String id) {
        return groups.stream().filter(g -> g.groupId().equals(id)).findFirst().orElse(null);
    }

    static String describeConfigs() throws Exception {
        String topic = "java-describe-configs";
        createTopic(topic, 1, Map.of("cleanup.policy", "compact", "retention.ms", "7200000"));
        ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        Config cfg = get(admin.describeConfigs(List.of(res), new DescribeConfigsOptions().includeSynonyms(true)).all()).get(res);
        ConfigEntry retention = cfg.get("retention.ms");
        check(retention != null, "retention.ms described");
        eq("7200000", retention.value(), "retention.ms");
        eq(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, retention.source(), "retention.ms source");
        check(!retention.isDefault(), "retention.ms not default");
        eq(ConfigEntry.ConfigType.LONG, retention.type(), "retention.ms type");
        check(!retention.synonyms().isEmpty(), "retention.ms synonyms");
        eq(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, retention.synonyms().get(0).source(), "first synonym source");
        ConfigEntry cleanup = cfg.get("cleanup.policy");
        check(cleanup != null, "cleanup.policy described");
        eq("compact", cleanup.value(), "cleanup.policy");
        eq(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, cleanup.source(), "cleanup.policy source");
        for (String key : List.of("segment.bytes", "max.message.bytes", "retention.bytes", "min.insync.replicas")) {
            ConfigEntry e = cfg.get(key);
            check(e != null, key + " described");
            check(e.isDefault() || e.source() == ConfigEntry.ConfigSource.DEFAULT_CONFIG
                    || e.source() == ConfigEntry.ConfigSource.STATIC_BROKER_CONFIG, key + " source " + e.source());
        }

        // Incremental: set retention.ms, delete the cleanup.policy override.
        get(admin.incrementalAlterConfigs(Map.of(res, List.of(
                new AlterConfigOp(new ConfigEntry("retention.ms", "3600000"), AlterConfigOp.OpType.SET),
                new AlterConfigOp(new ConfigEntry("cleanup.policy", ""), AlterConfigOp.OpType.DELETE)))).all());
        Config after = get(admin.describeConfigs(List.of(res)).all()).get(res);
        eq("3600000", after.get("retention.ms").value(), "retention.ms after incremental alter");
        eq("delete", after.get("cleanup.policy").value(), "cleanup.policy after DELETE");
        check(after.get("cleanup.policy").source() != ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG,
                "cleanup.policy override removed (source " + after.get("cleanup.policy").source() + ")");

        // Broker resource.
        ConfigResource broker = new ConfigResource(ConfigResource.Type.BROKER, "1");
        Config b = get(admin.describeConfigs(List.of(broker)).all()).get(broker);
        eq("1", b.get("num.partitions").value(), "broker num.partitions");
        eq("0", b.get("group.initial.rebalance.delay.ms").value(), "broker --set value");
        check(b.entries().size() > 300, "every Kafka 4.1 broker key described (" + b.entries().size() + ")");
        check(b.get("sasl.jaas.config").isSensitive() && b.get("sasl.jaas.config").value() == null,
                "sasl.jaas.config sensitive, no value");
        check(b.get("num.partitions").isReadOnly(), "num.partitions read-only");

        // Dynamic broker configs, as kafka-configs.sh --entity-default does:
        // a cluster-wide default, shown on broker 1 with its source, then removed.
        ConfigResource clusterDefault = new ConfigResource(ConfigResource.Type.BROKER, "");
        get(admin.incrementalAlterConfigs(Map.of(clusterDefault, List.of(new AlterConfigOp(
                new ConfigEntry("log.retention.ms", "86400000"), AlterConfigOp.OpType.SET)))).all());
        Config dyn = get(admin.describeConfigs(List.of(broker)).all()).get(broker);
        eq("86400000", dyn.get("log.retention.ms").value(), "dynamic log.retention.ms");
        eq(ConfigEntry.ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG, dyn.get("log.retention.ms").source(),
                "dynamic log.retention.ms source");
        eq(1, get(admin.describeConfigs(List.of(clusterDefault)).all()).get(clusterDefault).entries().size(),
                "cluster-default entries");
        try {
            get(admin.incrementalAlterConfigs(Map.of(broker, List.of(new AlterConfigOp(
                    new ConfigEntry("num.partitions", "3"), AlterConfigOp.OpType.SET)))).all());
            check(false, "altering read-only num.partitions was accepted");
        } catch (org.apache.kafka.common.errors.InvalidRequestException e) {
            check(e.getMessage().contains("Cannot update these configs dynamically"), "read-only key: " + e);
        }
        get(admin.incrementalAlterConfigs(Map.of(clusterDefault, List.of(new AlterConfigOp(
                new ConfigEntry("log.retention.ms", ""), AlterConfigOp.OpType.DELETE)))).all());
        eq(0, get(admin.describeConfigs(List.of(clusterDefault)).all()).get(clusterDefault).entries().size(),
                "cluster-default entries after DELETE");

        // Synonyms as Kafka lists them (kafka-configs.sh --describe --all shows
        // "retention.ms=... synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=...,
        // DEFAULT_CONFIG:log.retention.hours=168}"): a broker key's default in
        // that key's own unit.
        List<String> syn = new ArrayList<>();
        for (ConfigEntry.ConfigSynonym x : retention.synonyms()) syn.add(x.source() + ":" + x.name() + "=" + x.value());
        eq(List.of("DYNAMIC_TOPIC_CONFIG:retention.ms=7200000", "DEFAULT_CONFIG:log.retention.hours=168"), syn,
                "retention.ms synonyms");
        return "topic overrides (source, type, synonyms) + defaults, incrementalAlterConfigs SET/DELETE, broker configs (316 keys, dynamic cluster default set/describe/delete, read-only refused)";
    }

    // -------------------------------------------------------- transactions
    //
    // A transactional producer (transactional.id unique per run) against
    // read_committed and read_uncommitted consumers. kafka-clients 4.1 uses
    // transaction protocol version 2 (KIP-890: no AddPartitionsToTxn from
    // the client, epoch bump on every commit/abort) only when ApiVersions
    // finalizes feature transaction.version >= 2, version 1 otherwise; the
    // scenarios hold under either. Every read goes to the end of the log:
    // poll until the expected records arrived AND the consumer's position
    // on every partition reached the high watermark (so it stepped over every
    // marker, and anything it should not see would have come by then).

    /** Unique per run: topics and transactional ids of the txn scenarios (Kafka keeps them across runs). */
    static final String RUN = Uuid.randomUuid().toString().substring(0, 8).replace('-', 'x').replace('_', 'x').toLowerCase();

    static KafkaProducer<byte[], byte[]> txnProducer(String transactionalId) {
        KafkaProducer<byte[], byte[]> p = producer(Map.of(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId,
                ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "60000", ProducerConfig.LINGER_MS_CONFIG, "5"));
        p.initTransactions();
        return p;
    }

    static Map<String, String> isolation(String level) {
        return Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG, level);
    }

    /** High watermarks (ListOffsets latest, read_uncommitted) of partitions 0..n-1. */
    static Map<Integer, Long> highWatermarks(String topic, int n) throws Exception {
        Map<TopicPartition, OffsetSpec> q = new HashMap<>();
        for (TopicPartition tp : partitions(topic, n)) q.put(tp, OffsetSpec.latest());
        Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> r =
                get(admin.listOffsets(q, new ListOffsetsOptions(IsolationLevel.READ_UNCOMMITTED)).all());
        Map<Integer, Long> out = new HashMap<>();
        r.forEach((tp, info) -> out.put(tp.partition(), info.offset()));
        return out;
    }

    /** A fresh consumer (no group) with isolation.level `level` reads partitions 0..parts-1 of `topic` from the
     *  beginning until it has at least n records and its position on every partition reached the high watermark. */
    static List<ConsumerRecord<byte[], byte[]>> readToEnd(String topic, int parts, String level, int n) throws Exception {
        Map<Integer, Long> hw = highWatermarks(topic, parts);
        try (KafkaConsumer<byte[], byte[]> c = consumer(null, isolation(level))) {
            List<TopicPartition> tps = partitions(topic, parts);
            c.assign(tps);
            c.seekToBeginning(tps);
            List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
            long deadline = System.currentTimeMillis() + 30_000;
            for (;;) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(100))) got.add(r);
                if (got.size() >= n && tps.stream().allMatch(tp -> c.position(tp) >= hw.get(tp.partition()))) return got;
                if (System.currentTimeMillis() > deadline) {
                    Map<Integer, Long> pos = new HashMap<>();
                    for (TopicPartition tp : tps) pos.put(tp.partition(), c.position(tp));
                    throw new Failure(level + " consumer of " + topic + ": " + got.size() + " of " + n + " records, position " + pos
                            + ", high watermarks " + hw);
                }
            }
        }
    }

    /** The values per partition, checking that offsets strictly increase. */
    static Map<Integer, List<String>> valuesByPartition(List<ConsumerRecord<byte[], byte[]>> recs, String what) {
        Map<Integer, List<String>> out = new HashMap<>();
        Map<Integer, Long> last = new HashMap<>();
        for (ConsumerRecord<byte[], byte[]> r : recs) {
            Long prev = last.put(r.partition(), r.offset());
            check(prev == null || prev < r.offset(), what + ": partition " + r.partition() + " offset " + r.offset() + " after " + prev);
            out.computeIfAbsent(r.partition(), k -> new ArrayList<>()).add(s(r.value()));
        }
        return out;
    }

    static String txnCommit() throws Exception {
        String topic = "java-txn-commit-" + RUN;
        createTopic(topic, 2, Map.of());
        Map<Integer, List<String>> values = new HashMap<>();
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        for (int p = 0; p < 2; p++) {
            for (int i = 0; i < 10; i++) {
                String v = "commit-" + p + "-" + i;
                values.computeIfAbsent(p, k -> new ArrayList<>()).add(v);
                records.add(new ProducerRecord<>(topic, p, null, b(v)));
            }
        }
        try (KafkaProducer<byte[], byte[]> p = txnProducer(topic + "-txn");
                KafkaConsumer<byte[], byte[]> rc = consumer(null, isolation("read_committed"));
                KafkaConsumer<byte[], byte[]> ru = consumer(null, isolation("read_uncommitted"))) {
            p.beginTransaction();
            List<RecordMetadata> acks = new ArrayList<>();
            sendAll(p, records, acks);
            for (int i = 0; i < 20; i++) {
                eq(i / 10, acks.get(i).partition(), "ack partition " + i);
                eq((long) (i % 10), acks.get(i).offset(), "ack offset " + i);
            }
            // Open transaction: read_uncommitted gets the records, read_committed
            // (fetching over the same time and longer) nothing.
            for (KafkaConsumer<byte[], byte[]> c : List.of(rc, ru)) {
                c.assign(partitions(topic, 2));
                c.seekToBeginning(partitions(topic, 2));
            }
            eq(values, valuesByPartition(pollUntil(ru, 20_000, r -> r.size() >= 20), "read_uncommitted, open"),
                    "read_uncommitted while the transaction is open");
            long until = System.currentTimeMillis() + 1000;
            while (System.currentTimeMillis() < until) {
                int early = rc.poll(Duration.ofMillis(100)).count();
                check(early == 0, "read_committed consumer got " + early + " records of an open transaction");
            }
            p.commitTransaction();
            eq(values, valuesByPartition(pollUntil(rc, 20_000, r -> r.size() >= 20), "read_committed after commit"),
                    "read_committed consumer after the commit");
        }
        for (String level : List.of("read_committed", "read_uncommitted")) {
            eq(values, valuesByPartition(readToEnd(topic, 2, level, 20), level), level);
        }
        eq(Map.of(0, 11L, 1, 11L), highWatermarks(topic, 2), "high watermarks (10 records + commit marker)");
        return "20 records over 2 partitions in one transaction: invisible read_committed while open, then exactly once under both isolation levels";
    }

    static String txnAbort() throws Exception {
        String topic = "java-txn-abort-" + RUN;
        createTopic(topic, 2, Map.of());
        Map<Integer, List<String>> committed = new HashMap<>(), all = new HashMap<>();
        String tid = topic + "-txn";
        int firstEpoch, lastEpoch;
        try (KafkaProducer<byte[], byte[]> p = txnProducer(tid)) {
            firstEpoch = get(admin.describeTransactions(List.of(tid)).description(tid)).producerEpoch();
            for (String name : List.of("first", "second", "third")) {
                boolean abort = name.equals("second");
                List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
                for (int part = 0; part < 2; part++) {
                    for (int i = 0; i < 3; i++) {
                        String v = name + "-" + part + "-" + i;
                        records.add(new ProducerRecord<>(topic, part, null, b(v)));
                        all.computeIfAbsent(part, k -> new ArrayList<>()).add(v);
                        if (!abort) committed.computeIfAbsent(part, k -> new ArrayList<>()).add(v);
                    }
                }
                p.beginTransaction();
                sendAll(p, records, null);
                if (abort) p.abortTransaction();
                else p.commitTransaction();
            }
            lastEpoch = get(admin.describeTransactions(List.of(tid)).description(tid)).producerEpoch();
        }
        // Transaction protocol version 2 (KIP-890, finalized on Kafka 4.1 and
        // strom): every EndTxn bumps the producer's epoch; version 1 keeps it.
        var tv = get(admin.describeFeatures().featureMetadata()).finalizedFeatures().get("transaction.version");
        int version = tv == null ? 0 : tv.maxVersionLevel();
        eq(firstEpoch + (version >= 2 ? 3 : 0), lastEpoch, "producer epoch after 3 transactions (transaction.version " + version + ")");
        eq(committed, valuesByPartition(readToEnd(topic, 2, "read_committed", 12), "read_committed"), "read_committed");
        eq(all, valuesByPartition(readToEnd(topic, 2, "read_uncommitted", 18), "read_uncommitted"), "read_uncommitted");
        eq(Map.of(0, 12L, 1, 12L), highWatermarks(topic, 2), "high watermarks (9 records + 3 markers)");
        return "commit, abort, commit: read_committed saw the 12 committed in order and reached the high watermark, read_uncommitted all 18; "
                + "transaction.version " + version + ": the epoch went " + firstEpoch + " -> " + lastEpoch;
    }

    static String txnConsumeTransformProduce() throws Exception {
        String src = "java-txn-ctp-in-" + RUN, dst = "java-txn-ctp-out-" + RUN, group = "java-txn-ctp-g-" + RUN;
        createTopic(src, 2, Map.of());
        createTopic(dst, 2, Map.of());
        int n = 60;
        List<ProducerRecord<byte[], byte[]>> inputs = new ArrayList<>();
        for (int i = 0; i < n; i++) inputs.add(new ProducerRecord<>(src, i % 2, b("k" + i), b(String.format("in-%03d", i))));
        try (KafkaProducer<byte[], byte[]> p = producer(Map.of())) {
            sendAll(p, inputs, null);
        }
        Map<TopicPartition, Long> end = Map.of(new TopicPartition(src, 0), (long) n / 2, new TopicPartition(src, 1), (long) n / 2);
        Map<TopicPartition, Long> committed = new HashMap<>();
        int batches = 0, commits = 0, aborts = 0, abortedRecords = 0;
        Map<String, String> cc = new HashMap<>(isolation("read_committed"));
        cc.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "7");
        try (KafkaConsumer<byte[], byte[]> c = consumer(group, cc); KafkaProducer<byte[], byte[]> p = txnProducer(group + "-txn")) {
            c.subscribe(List.of(src));
            long deadline = System.currentTimeMillis() + 60_000;
            while (!committed.equals(end)) {
                if (System.currentTimeMillis() > deadline)
                    throw new Failure("committed " + committed + " of " + end + " after " + batches + " batches");
                var recs = c.poll(Duration.ofMillis(100));
                if (recs.isEmpty()) continue;
                batches++;
                p.beginTransaction();
                Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                for (ConsumerRecord<byte[], byte[]> r : recs) {
                    p.send(new ProducerRecord<>(dst, r.partition(), r.key(), b("out-" + s(r.value()).substring(3))));
                    offsets.put(new TopicPartition(src, r.partition()), new OffsetAndMetadata(r.offset() + 1));
                }
                // Written before the transaction ends (an abort would drop unsent
                // records): the aborted ones are really in the log then.
                p.flush();
                // KIP-447: the consumer's group metadata (generation, member id).
                p.sendOffsetsToTransaction(offsets, c.groupMetadata());
                if (batches % 3 == 0) {
                    // Aborted: output and offsets discarded; rewind to the last
                    // committed position, as an EOS application does.
                    p.abortTransaction();
                    aborts++;
                    abortedRecords += recs.count();
                    for (TopicPartition tp : offsets.keySet()) c.seek(tp, committed.getOrDefault(tp, 0L));
                } else {
                    p.commitTransaction();
                    commits++;
                    offsets.forEach((tp, om) -> committed.put(tp, om.offset()));
                }
            }
        }
        check(aborts >= 1 && commits >= 2, "commits " + commits + ", aborts " + aborts);
        Map<TopicPartition, OffsetAndMetadata> groupOffsets = get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
        Map<TopicPartition, Long> groupCommitted = new HashMap<>();
        groupOffsets.forEach((tp, om) -> groupCommitted.put(tp, om.offset()));
        eq(end, groupCommitted, "group offsets after the last transaction");

        Map<Integer, List<String>> want = new HashMap<>();
        for (int i = 0; i < n; i++) want.computeIfAbsent(i % 2, k -> new ArrayList<>()).add(String.format("out-%03d", i));
        Map<Integer, List<String>> got = valuesByPartition(readToEnd(dst, 2, "read_committed", n), "read_committed output");
        got.values().forEach(l -> l.sort(null));
        eq(want, got, "read_committed output: each input's transform exactly once");
        int uncommitted = readToEnd(dst, 2, "read_uncommitted", n + abortedRecords).size();
        eq(n + abortedRecords, uncommitted, "read_uncommitted output (aborted transactions' records included)");
        return batches + " batches, " + commits + " committed, " + aborts + " aborted (" + abortedRecords
                + " records rewound), output exactly once, group offsets at the input's end";
    }

    static String txnFencing() throws Exception {
        String topic = "java-txn-fencing-" + RUN, tid = topic + "-txn";
        createTopic(topic, 1, Map.of());
        String fenced;
        try (KafkaProducer<byte[], byte[]> p1 = txnProducer(tid)) {
            p1.beginTransaction();
            sendAll(p1, List.of(new ProducerRecord<>(topic, b("p1-committed"))), null);
            p1.commitTransaction();
            p1.beginTransaction();
            sendAll(p1, List.of(new ProducerRecord<>(topic, b("p1-open"))), null);
            // Same transactional.id: InitProducerId aborts p1's open
            // transaction and bumps the epoch.
            try (KafkaProducer<byte[], byte[]> p2 = txnProducer(tid)) {
                Throwable err = null;
                try {
                    p1.send(new ProducerRecord<>(topic, b("p1-zombie"))).get(30, TimeUnit.SECONDS);
                    p1.commitTransaction();
                } catch (Exception e) {
                    err = e;
                }
                check(err != null, "the fenced producer's send and commit succeeded");
                Throwable t = err;
                while (t != null && !(t instanceof ProducerFencedException) && !(t instanceof InvalidProducerEpochException)) t = t.getCause();
                check(t != null, "fenced producer failed with " + err + ", not ProducerFencedException/InvalidProducerEpochException");
                fenced = t.getClass().getSimpleName();
                p2.beginTransaction();
                sendAll(p2, List.of(new ProducerRecord<>(topic, b("p2-committed"))), null);
                p2.commitTransaction();
            }
        }
        List<String> values = readToEnd(topic, 1, "read_committed", 2).stream().map(r -> s(r.value())).collect(Collectors.toList());
        eq(List.of("p1-committed", "p2-committed"), values, "read_committed after the fence");
        return "first producer fenced (" + fenced + "), its open transaction aborted, the new one commits";
    }

    // ------------------------------------------------------------- runner

    interface Scenario {
        String run() throws Exception;
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: Scenarios BOOTSTRAP [scenario...]");
            System.exit(2);
        }
        bootstrap = args[0];
        Set<String> only = new HashSet<>(Arrays.asList(args).subList(1, args.length));
        Map<String, Scenario> scenarios = new LinkedHashMap<>();
        scenarios.put("metadata", Scenarios::metadata);
        scenarios.put("admin-topics", Scenarios::adminTopics);
        scenarios.put("keyed-order", Scenarios::keyedOrder);
        scenarios.put("headers-timestamps-nulls", Scenarios::headersTimestampsNulls);
        scenarios.put("compression-gzip", () -> compression("gzip", 1));
        scenarios.put("compression-snappy", () -> compression("snappy", 2));
        scenarios.put("compression-lz4", () -> compression("lz4", 3));
        scenarios.put("compression-zstd", () -> compression("zstd", 4));
        scenarios.put("idempotent", Scenarios::idempotent);
        scenarios.put("group-commit-resume", Scenarios::groupCommitResume);
        scenarios.put("group-rebalance", Scenarios::groupRebalance);
        scenarios.put("offsets-for-times", Scenarios::offsetsForTimes);
        scenarios.put("describe-list-groups", Scenarios::describeListGroups);
        scenarios.put("describe-configs", Scenarios::describeConfigs);
        scenarios.put("txn-commit", Scenarios::txnCommit);
        scenarios.put("txn-abort", Scenarios::txnAbort);
        scenarios.put("txn-consume-transform-produce", Scenarios::txnConsumeTransformProduce);
        scenarios.put("txn-fencing", Scenarios::txnFencing);

        Properties ap = common();
        ap.put(AdminClientConfig.CLIENT_ID_CONFIG, CLIENT_ID + "-admin");
        admin = Admin.create(ap);
        int failed = 0;
        ExecutorService exec = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r);
            t.setDaemon(true);
            return t;
        });
        for (Map.Entry<String, Scenario> e : scenarios.entrySet()) {
            if (!only.isEmpty() && !only.contains(e.getKey())) continue;
            long t0 = System.currentTimeMillis();
            Callable<String> call = e.getValue()::run;
            Future<String> f = exec.submit(call);
            try {
                String detail = f.get(SCENARIO_TIMEOUT_MS, TimeUnit.MILLISECONDS);
                System.out.println("RESULT " + CLIENT + " " + e.getKey() + " PASS " + detail + " (" + (System.currentTimeMillis() - t0) + " ms)");
            } catch (TimeoutException te) {
                f.cancel(true);
                failed++;
                System.out.println("RESULT " + CLIENT + " " + e.getKey() + " FAIL scenario timed out after " + SCENARIO_TIMEOUT_MS + " ms");
            } catch (ExecutionException ee) {
                failed++;
                Throwable c = ee.getCause();
                String msg = c instanceof Failure ? c.getMessage() : c.toString();
                System.out.println("RESULT " + CLIENT + " " + e.getKey() + " FAIL " + msg.replaceAll("\\s+", " "));
                if (!(c instanceof Failure)) c.printStackTrace();
            }
            System.out.flush();
        }
        admin.close(Duration.ofSeconds(5));
        System.exit(failed == 0 ? 0 : 1);
    }
}
