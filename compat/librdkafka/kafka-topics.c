/*
 * A stand-in for Kafka's bin/kafka-topics.sh, enough for librdkafka's test
 * suite (test_kafka_topics() in tests/test.c runs
 * "$KAFKA_PATH/bin/kafka-topics.sh --bootstrap-server $BROKERS ...").
 * Built by setup.sh against the librdkafka it builds; uses the Admin API:
 *
 *   --create --topic T [--partitions N] [--replication-factor R] [--config k=v]...
 *   --alter  --topic T --partitions N
 *   --delete --topic T
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rdkafka.h"

static int fail(const char *what, const char *msg) {
        fprintf(stderr, "kafka-topics: %s: %s\n", what, msg);
        return 1;
}

int main(int argc, char **argv) {
        const char *bootstrap = NULL, *topic = NULL, *mode = NULL;
        const char *configs[64];
        int config_cnt = 0, partitions = -1, replication = -1, i;
        char errstr[512];

        for (i = 1; i < argc; i++) {
                const char *a = argv[i];
                const char *v = i + 1 < argc ? argv[i + 1] : NULL;
                if (!strcmp(a, "--create") || !strcmp(a, "--alter") ||
                    !strcmp(a, "--delete"))
                        mode = a + 2;
                else if (!strcmp(a, "--bootstrap-server") && v)
                        bootstrap = argv[++i];
                else if (!strcmp(a, "--topic") && v)
                        topic = argv[++i];
                else if (!strcmp(a, "--partitions") && v)
                        partitions = atoi(argv[++i]);
                else if (!strcmp(a, "--replication-factor") && v)
                        replication = atoi(argv[++i]);
                else if (!strcmp(a, "--config") && v && config_cnt < 64)
                        configs[config_cnt++] = argv[++i];
                else
                        return fail("unsupported argument", a);
        }
        if (!bootstrap || !topic || !mode)
                return fail("usage",
                            "--bootstrap-server B --create|--alter|--delete "
                            "--topic T ...");

        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr,
                              sizeof(errstr)) != RD_KAFKA_CONF_OK)
                return fail("conf", errstr);
        rd_kafka_t *rk =
            rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk)
                return fail("rd_kafka_new", errstr);
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_AdminOptions_t *opts =
            rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_ANY);
        rd_kafka_AdminOptions_set_request_timeout(opts, 30000, errstr,
                                                  sizeof(errstr));
        rd_kafka_AdminOptions_set_operation_timeout(opts, 30000, errstr,
                                                    sizeof(errstr));

        if (!strcmp(mode, "create")) {
                rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(
                    topic, partitions, replication, errstr, sizeof(errstr));
                if (!nt)
                        return fail("NewTopic", errstr);
                for (i = 0; i < config_cnt; i++) {
                        char kv[512], *eq;
                        snprintf(kv, sizeof(kv), "%s", configs[i]);
                        if (!(eq = strchr(kv, '=')))
                                return fail("--config wants k=v", kv);
                        *eq = '\0';
                        rd_kafka_NewTopic_set_config(nt, kv, eq + 1);
                }
                rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
                rd_kafka_NewTopic_destroy(nt);
        } else if (!strcmp(mode, "alter")) {
                if (partitions < 0)
                        return fail("--alter", "only --partitions is supported");
                rd_kafka_NewPartitions_t *np = rd_kafka_NewPartitions_new(
                    topic, partitions, errstr, sizeof(errstr));
                if (!np)
                        return fail("NewPartitions", errstr);
                rd_kafka_CreatePartitions(rk, &np, 1, opts, q);
                rd_kafka_NewPartitions_destroy(np);
        } else {
                rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(topic);
                rd_kafka_DeleteTopics(rk, &dt, 1, opts, q);
                rd_kafka_DeleteTopic_destroy(dt);
        }

        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 60000);
        int rc = 0;
        if (!ev)
                return fail(mode, "no result within 60 s");
        if (rd_kafka_event_error(ev)) {
                rc = fail(mode, rd_kafka_event_error_string(ev));
        } else {
                const rd_kafka_topic_result_t **res = NULL;
                size_t cnt = 0;
                if (!strcmp(mode, "create"))
                        res = rd_kafka_CreateTopics_result_topics(
                            rd_kafka_event_CreateTopics_result(ev), &cnt);
                else if (!strcmp(mode, "alter"))
                        res = rd_kafka_CreatePartitions_result_topics(
                            rd_kafka_event_CreatePartitions_result(ev), &cnt);
                else
                        res = rd_kafka_DeleteTopics_result_topics(
                            rd_kafka_event_DeleteTopics_result(ev), &cnt);
                for (size_t j = 0; j < cnt; j++)
                        if (rd_kafka_topic_result_error(res[j]))
                                rc = fail(rd_kafka_topic_result_name(res[j]),
                                          rd_kafka_topic_result_error_string(
                                              res[j]));
        }
        if (!rc)
                printf("%sd topic %s.\n", !strcmp(mode, "alter") ? "Altere"
                                          : !strcmp(mode, "create") ? "Create"
                                                                    : "Delete",
                       topic);
        rd_kafka_event_destroy(ev);
        rd_kafka_AdminOptions_destroy(opts);
        rd_kafka_queue_destroy(q);
        rd_kafka_destroy(rk);
        return rc;
}
