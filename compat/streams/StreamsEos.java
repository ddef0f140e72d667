import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListConsumerGroupOffsetsOptions;
import org.apache.kafka.clients.admin.ListConsumerGroupOffsetsSpec;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StoreQueryParameters;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.QueryableStoreTypes;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;
import org.apache.kafka.streams.state.Stores;

/**
 * Kafka Streams under exactly_once_v2, for compat/streams/run.sh.
 *
 * <p>Input: N records, key "u" + (i % U), value i (decimal), i in [0, N).
 * Topology: groupBy the derived key "g" + (u % K) (a repartition topic),
 * aggregate "count,sum" into an in-memory store "agg" (changelog
 * APP-agg-changelog), every update to the output topic (the record cache is
 * off, so each input record gives one output record). Exactly once means
 * the committed output holds, for each group key, the counts 1..n in order,
 * each once, and the last sum is the sum of the group's values.
 *
 * <pre>
 *   StreamsEos prefill BOOT N U PARTITIONS   topics and the input records
 *   StreamsEos app BOOT STATE_DIR            the Streams app until SIGTERM
 *   StreamsEos dump BOOT STATE_DIR DEADLINE  restores the store from its changelog,
 *                                            prints "STATE key value" lines, exits
 *   StreamsEos wait-output BOOT MARK DEADLINE  until the output topic's end offsets sum
 *                                            to MARK; prints them and the last stable offsets
 *   StreamsEos wait-done BOOT N DEADLINE     until the committed output holds N records and the
 *                                            app group's stable committed offsets are the
 *                                            input topic's end offsets
 *   StreamsEos verify BOOT N U K DUMPFILE    RESULT lines: output and changelog (read_committed)
 *                                            and the dumped store against the expectation
 * </pre>
 */
public final class StreamsEos {
    static final String APP = "strom-streams-eos";
    static final String IN = "streams-input";
    static final String OUT = "streams-output";
    static final String STORE = "agg";
    static final String CHANGELOG = APP + "-" + STORE + "-changelog";

    public static void main(String[] args) throws Exception {
        String boot = args[1];
        switch (args[0]) {
            case "prefill" -> prefill(boot, Integer.parseInt(args[2]), Integer.parseInt(args[3]),
                    Integer.parseInt(args[4]));
            case "app" -> app(boot, args[2]);
            case "dump" -> System.exit(dump(boot, args[2], Integer.parseInt(args[3])));
            case "wait-output" -> System.exit(waitOutput(boot, Long.parseLong(args[2]), Integer.parseInt(args[3])));
            case "wait-done" -> System.exit(waitDone(boot, Long.parseLong(args[2]), Integer.parseInt(args[3])));
            case "verify" -> System.exit(verify(boot, Integer.parseInt(args[2]), Integer.parseInt(args[3]),
                    Integer.parseInt(args[4]), args[5]));
            default -> throw new IllegalArgumentException("unknown mode " + args[0]);
        }
    }

    static Properties common(String boot) {
        Properties p = new Properties();
        p.put("bootstrap.servers", boot);
        return p;
    }

    // ------------------------------------------------------------------ prefill

    static void prefill(String boot, int n, int users, int partitions) throws Exception {
        try (Admin admin = Admin.create(common(boot))) {
            // -Dstreams.replicas: the topics' replication factor (3 against three nodes).
            short replicas = Short.parseShort(System.getProperty("streams.replicas", "1"));
            admin.createTopics(List.of(new NewTopic(IN, partitions, replicas), new NewTopic(OUT, partitions, replicas)))
                    .all().get(60, TimeUnit.SECONDS);
        }
        Properties p = common(boot);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "10");
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p, new StringSerializer(), new StringSerializer())) {
            for (int i = 0; i < n; i++) {
                producer.send(new ProducerRecord<>(IN, "u" + (i % users), Integer.toString(i)), (md, e) -> {
                    if (e != null) {
                        System.err.println("produce failed: " + e);
                        System.exit(3);
                    }
                });
            }
            producer.flush();
        }
        System.out.println("PREFILLED " + n);
    }

    // ---------------------------------------------------------------- the app

    static String groupOf(String user, int k) {
        return "g" + (Integer.parseInt(user.substring(1)) % k);
    }

    static KafkaStreams build(String boot, String stateDir, int k) {
        StreamsBuilder b = new StreamsBuilder();
        b.stream(IN, Consumed.with(Serdes.String(), Serdes.String()))
                .groupBy((user, v) -> groupOf(user, k), Grouped.with("by-group", Serdes.String(), Serdes.String()))
                .aggregate(() -> "0,0", (g, v, agg) -> {
                    int comma = agg.indexOf(',');
                    long count = Long.parseLong(agg.substring(0, comma)) + 1;
                    long sum = Long.parseLong(agg.substring(comma + 1)) + Long.parseLong(v);
                    return count + "," + sum;
                }, Materialized.<String, String>as(Stores.inMemoryKeyValueStore(STORE))
                        .withKeySerde(Serdes.String()).withValueSerde(Serdes.String()))
                .toStream()
                .to(OUT, Produced.with(Serdes.String(), Serdes.String()));
        Properties p = common(boot);
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, APP);
        // streams.guarantee=at_least_once is the negative control: the kills then double count.
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, System.getProperty("streams.guarantee", StreamsConfig.EXACTLY_ONCE_V2));
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, "100");
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, "2");
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
        // Every update goes downstream (no record cache): one output record per input record.
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, "0");
        // A killed instance's member leaves the group after 6 s (the broker's minimum),
        // its open transaction is aborted after 5 s.
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), "6000");
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG), "1500");
        p.put(StreamsConfig.producerPrefix(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG), "5000");
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        KafkaStreams streams = new KafkaStreams(b.build(), p);
        streams.setStateListener((now, before) -> {
            System.out.println("STATE-CHANGE " + before + " -> " + now);
            System.out.flush();
        });
        streams.setUncaughtExceptionHandler(e -> {
            System.out.println("UNCAUGHT " + e);
            e.printStackTrace(System.out);
            System.out.flush();
            return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.REPLACE_THREAD;
        });
        return streams;
    }

    static final int K = Integer.getInteger("streams.groups", 50);

    static void app(String boot, String stateDir) throws Exception {
        KafkaStreams streams = build(boot, stateDir, K);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            streams.close(Duration.ofSeconds(20));
            stopped.countDown();
        }));
        streams.start();
        stopped.await();
    }

    static int dump(String boot, String stateDir, int deadlineS) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(deadlineS);
        try (KafkaStreams streams = build(boot, stateDir, K)) {
            streams.start();
            while (System.nanoTime() < deadline) {
                if (streams.state() == KafkaStreams.State.RUNNING) {
                    try {
                        ReadOnlyKeyValueStore<String, String> store = streams.store(
                                StoreQueryParameters.fromNameAndType(STORE, QueryableStoreTypes.keyValueStore()));
                        Map<String, String> all = new TreeMap<>();
                        try (KeyValueIterator<String, String> it = store.all()) {
                            while (it.hasNext()) {
                                KeyValue<String, String> kv = it.next();
                                all.put(kv.key, kv.value);
                            }
                        }
                        // Every task of the aggregation runs here (one instance): the
                        // store must hold every group.
                        if (all.size() == K) {
                            for (Map.Entry<String, String> e : all.entrySet()) {
                                System.out.println("STATE " + e.getKey() + " " + e.getValue());
                            }
                            System.out.println("DUMPED " + all.size());
                            return 0;
                        }
                    } catch (org.apache.kafka.streams.errors.InvalidStateStoreException e) {
                        // rebalancing or restoring: try again
                    }
                }
                Thread.sleep(100);
            }
            System.out.println("DUMP-TIMEOUT state " + streams.state());
            return 1;
        }
    }

    // --------------------------------------------------------------- watching

    static Map<TopicPartition, Long> endOffsets(KafkaConsumer<?, ?> c, String topic) {
        List<TopicPartition> tps = new ArrayList<>();
        for (PartitionInfo pi : c.partitionsFor(topic, Duration.ofSeconds(30))) {
            tps.add(new TopicPartition(topic, pi.partition()));
        }
        return c.endOffsets(tps, Duration.ofSeconds(30));
    }

    static KafkaConsumer<byte[], byte[]> consumer(String boot, boolean readCommitted) {
        Properties p = common(boot);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG,
                (readCommitted ? IsolationLevel.READ_COMMITTED : IsolationLevel.READ_UNCOMMITTED).toString());
        return new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    static long committedInput(Admin admin, boolean stable) throws Exception {
        Map<TopicPartition, OffsetAndMetadata> m = admin.listConsumerGroupOffsets(
                Map.of(APP, new ListConsumerGroupOffsetsSpec()),
                new ListConsumerGroupOffsetsOptions().requireStable(stable)).partitionsToOffsetAndMetadata(APP)
                .get(30, TimeUnit.SECONDS);
        long sum = 0;
        for (Map.Entry<TopicPartition, OffsetAndMetadata> e : m.entrySet()) {
            if (e.getKey().topic().equals(IN) && e.getValue() != null) {
                sum += e.getValue().offset();
            }
        }
        return sum;
    }

    static int waitOutput(String boot, long mark, int deadlineS) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(deadlineS);
        try (KafkaConsumer<byte[], byte[]> c = consumer(boot, false);
                KafkaConsumer<byte[], byte[]> rc = consumer(boot, true)) {
            while (System.nanoTime() < deadline) {
                long hw = endOffsets(c, OUT).values().stream().mapToLong(Long::longValue).sum();
                if (hw >= mark) {
                    // The last stable offsets: below N, not all output is committed yet.
                    long lso = endOffsets(rc, OUT).values().stream().mapToLong(Long::longValue).sum();
                    System.out.println("OUTPUT " + hw + " STABLE " + lso);
                    return 0;
                }
                Thread.sleep(20);
            }
            System.out.println("OUTPUT-TIMEOUT");
            return 1;
        }
    }

    /**
     * Until the committed output (read_committed) holds N records and the app
     * group's stable committed offsets (require_stable) are the input's end.
     */
    static int waitDone(String boot, long n, int deadlineS) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(deadlineS);
        try (KafkaConsumer<byte[], byte[]> c = consumer(boot, true); Admin admin = Admin.create(common(boot))) {
            long end = endOffsets(c, IN).values().stream().mapToLong(Long::longValue).sum();
            Map<TopicPartition, Long> outParts = endOffsets(c, OUT);
            c.assign(outParts.keySet());
            c.seekToBeginning(outParts.keySet());
            long committed = -1, records = 0;
            String last = "";
            long nextCheck = 0;
            while (System.nanoTime() < deadline) {
                records += c.poll(Duration.ofMillis(100)).count();
                if (records >= n && System.nanoTime() >= nextCheck) {
                    nextCheck = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(200);
                    try {
                        committed = committedInput(admin, true);
                    } catch (java.util.concurrent.ExecutionException e) {
                        last = e.getCause().toString(); // UNSTABLE_OFFSET_COMMIT while a transaction is open
                    }
                    if (committed == end) {
                        System.out.println("DONE output " + records + " input " + end);
                        return 0;
                    }
                }
            }
            System.out.println("DONE-TIMEOUT committed output records " + records + " of " + n + ", input committed "
                    + committed + " of " + end + " " + last);
            return 1;
        }
    }

    // ------------------------------------------------------------- verifying

    /** Every committed record of TOPIC (read_committed, up to the last stable offset). */
    static Map<String, List<String>> readAll(String boot, String topic, int[] total) {
        Map<String, List<String>> byKey = new TreeMap<>();
        try (KafkaConsumer<byte[], byte[]> c = consumer(boot, true)) {
            Map<TopicPartition, Long> ends = endOffsets(c, topic);
            c.assign(ends.keySet());
            c.seekToBeginning(ends.keySet());
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (System.nanoTime() < deadline) {
                boolean done = true;
                for (Map.Entry<TopicPartition, Long> e : ends.entrySet()) {
                    if (c.position(e.getKey()) < e.getValue()) {
                        done = false;
                    }
                }
                if (done) {
                    break;
                }
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) {
                    String key = new String(r.key(), StandardCharsets.UTF_8);
                    String value = r.value() == null ? null : new String(r.value(), StandardCharsets.UTF_8);
                    byKey.computeIfAbsent(key, x -> new ArrayList<>()).add(value);
                    total[0]++;
                }
            }
        }
        return byKey;
    }

    static int verify(String boot, int n, int users, int k, String dumpFile) throws Exception {
        Map<String, long[]> want = new TreeMap<>();
        for (int i = 0; i < n; i++) {
            long[] cs = want.computeIfAbsent(groupOf("u" + (i % users), k), x -> new long[2]);
            cs[0]++;
            cs[1] += i;
        }
        int failed = 0;

        // 1. The output: counts 1..n in order per key, each once; the last sum right.
        int[] total = {0};
        Map<String, List<String>> out = readAll(boot, OUT, total);
        List<String> problems = new ArrayList<>();
        long dups = 0, gaps = 0, extra = 0;
        for (Map.Entry<String, long[]> e : want.entrySet()) {
            List<String> vs = out.getOrDefault(e.getKey(), List.of());
            long expectCount = 1;
            for (String v : vs) {
                long c = Long.parseLong(v.substring(0, v.indexOf(',')));
                if (c < expectCount) {
                    dups++;
                } else if (c > expectCount) {
                    gaps++;
                }
                expectCount = c + 1;
            }
            extra += Math.max(0, vs.size() - e.getValue()[0]);
            String last = vs.isEmpty() ? "none" : vs.get(vs.size() - 1);
            String expect = e.getValue()[0] + "," + e.getValue()[1];
            if (!last.equals(expect) || vs.size() != e.getValue()[0]) {
                problems.add(e.getKey() + ": " + vs.size() + " records, last " + last + ", want " + e.getValue()[0]
                        + " records, last " + expect);
            }
        }
        for (String key : out.keySet()) {
            if (!want.containsKey(key)) {
                problems.add("unexpected key " + key);
            }
        }
        if (problems.isEmpty()) {
            System.out.println("RESULT streams exactly-once-output PASS " + total[0] + " committed output records over "
                    + want.size() + " keys: counts 1..n once each, in order, final count,sum right");
        } else {
            failed++;
            System.out.println("RESULT streams exactly-once-output FAIL " + total[0] + " committed output records, "
                    + extra + " more than expected (inputs counted twice), " + dups + " counts going back, " + gaps
                    + " skipped counts; " + problems.size()
                    + " keys wrong, e.g. " + problems.subList(0, Math.min(3, problems.size())));
        }

        // 2. The changelog: the latest committed value per key is the expected one.
        int[] clTotal = {0};
        Map<String, List<String>> cl = readAll(boot, CHANGELOG, clTotal);
        problems.clear();
        for (Map.Entry<String, long[]> e : want.entrySet()) {
            List<String> vs = cl.getOrDefault(e.getKey(), List.of());
            String last = vs.isEmpty() ? "none" : vs.get(vs.size() - 1);
            String expect = e.getValue()[0] + "," + e.getValue()[1];
            if (!last.equals(expect)) {
                problems.add(e.getKey() + ": latest " + last + ", want " + expect);
            }
        }
        if (cl.size() != want.size()) {
            problems.add(cl.size() + " keys in the changelog, want " + want.size());
        }
        if (problems.isEmpty()) {
            System.out.println("RESULT streams changelog PASS " + CHANGELOG + ": " + clTotal[0]
                    + " committed records, the latest of each of " + want.size() + " keys is the expected aggregate");
        } else {
            failed++;
            System.out.println("RESULT streams changelog FAIL " + CHANGELOG + ": " + clTotal[0] + " committed records; "
                    + problems.size() + " problems, e.g. " + problems.subList(0, Math.min(3, problems.size())));
        }

        // 3. The store a fresh instance restored from the changelog.
        Map<String, String> dumped = new HashMap<>();
        for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of(dumpFile))) {
            String[] f = line.split(" ");
            if (f.length == 3 && f[0].equals("STATE")) {
                dumped.put(f[1], f[2]);
            }
        }
        problems.clear();
        for (Map.Entry<String, long[]> e : want.entrySet()) {
            String got = dumped.get(e.getKey());
            String expect = e.getValue()[0] + "," + e.getValue()[1];
            if (!expect.equals(got)) {
                problems.add(e.getKey() + ": " + got + ", want " + expect);
            }
        }
        if (dumped.size() != want.size()) {
            problems.add(dumped.size() + " keys in the store, want " + want.size());
        }
        if (problems.isEmpty()) {
            System.out.println("RESULT streams changelog-restore PASS a restarted instance restored store " + STORE
                    + " from the changelog: all " + want.size() + " aggregates right");
        } else {
            failed++;
            System.out.println("RESULT streams changelog-restore FAIL " + problems.size() + " problems, e.g. "
                    + problems.subList(0, Math.min(3, problems.size())));
        }
        return failed == 0 ? 0 : 1;
    }
}
