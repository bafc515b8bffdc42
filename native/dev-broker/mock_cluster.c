/*
 * meterline-dev-broker: a Kafka-protocol broker for development and tests.
 *
 *   NOT FOR PRODUCTION. Data lives in memory only, there is no durability,
 *   no authentication, and the broker is librdkafka's *mock* cluster, which
 *   implements only the parts of the protocol that librdkafka's own tests need.
 *
 * Built and cached by scripts/build-dev-broker.sh; statically linked against a
 * librdkafka.a whose per-partition retention limits were raised (see script).
 *
 * Usage:
 *   meterline-dev-broker [--brokers N] [--rf N] [--topic name:partitions]...
 *                        [--no-stdin]
 *
 * Protocol with the parent process:
 *   - stdout, first line:  "BOOTSTRAP host:port[,host:port...]"  (then flushed)
 *   - stdin: one command per line; exactly one reply line per command on
 *     stdout, "OK[ <data>]" or "ERR <message>", in command order.
 *   - The process exits 0 on EOF on stdin (so a dead parent never leaves an
 *     orphan broker), on SIGTERM or on SIGINT. With --no-stdin, stdin is
 *     ignored and only a signal stops it (detached mode).
 *
 * Commands:
 *   ping
 *   topic <name> <partitions> [rf]
 *   push_errors <apikey> <count> <errcode>...   (1 errcode = repeat it count times)
 *   clear_errors [apikey]                        (no apikey = every api key)
 *   broker_down <id>   broker_up <id>            (id -1 = all brokers)
 *   rtt <broker_id> <ms>
 *   leader <topic> <partition> <broker_id>        (creates the topic if missing)
 *   help
 * Error codes are numeric (e.g. 6, -195) or librdkafka names without the
 * RD_KAFKA_RESP_ERR_ prefix (e.g. NOT_LEADER_FOR_PARTITION, _TRANSPORT).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "rdkafka.h"
#include "rdkafka_mock.h"

#define MAX_TOPICS 256
#define MAX_LINE 4096
#define MAX_ARGS 64
/* Upper bound for api keys swept by "clear_errors" without an argument;
 * clearing a key that has no error stack is a no-op. */
#define MAX_API_KEY 128
/* Kafka's LeaveGroup request. */
#define APIKEY_LEAVEGROUP 13

struct topic_spec {
        const char *name;
        int partitions;
};

static rd_kafka_mock_cluster_t *mc;
static int default_rf;

static void die(const char *fmt, ...) {
        va_list ap;
        fputs("meterline-dev-broker: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        exit(2);
}

static void usage(FILE *fp) {
        fputs("usage: meterline-dev-broker [--brokers N] [--rf N] "
              "[--topic name:partitions]... [--no-stdin]\n"
              "NOT FOR PRODUCTION: in-memory librdkafka mock cluster.\n",
              fp);
}

/* Parses a whole string as a base-10 integer in [min, max]. */
static int parse_int(const char *s, long min, long max, long *out) {
        char *end;
        long v;
        if (!s || !*s)
                return -1;
        errno = 0;
        v     = strtol(s, &end, 10);
        if (errno || *end || v < min || v > max)
                return -1;
        *out = v;
        return 0;
}

/* Error code by number or by librdkafka name (case-insensitive, without the
 * RD_KAFKA_RESP_ERR_ prefix). */
static int parse_err(const char *s, rd_kafka_resp_err_t *out) {
        const struct rd_kafka_err_desc *descs;
        size_t cnt, i;
        long v;

        if (parse_int(s, INT_MIN, INT_MAX, &v) == 0) {
                *out = (rd_kafka_resp_err_t)v;
                return 0;
        }
        rd_kafka_get_err_descs(&descs, &cnt);
        for (i = 0; i < cnt; i++) {
                if (descs[i].name && !strcasecmp(descs[i].name, s)) {
                        *out = descs[i].code;
                        return 0;
                }
        }
        return -1;
}

/* Every reply is exactly one line and is flushed immediately: the parent
 * matches replies to commands by order. */
static void reply(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vfprintf(stdout, fmt, ap);
        va_end(ap);
        fputc('\n', stdout);
        fflush(stdout);
}

static void reply_err(rd_kafka_resp_err_t err) {
        if (err)
                reply("ERR %s: %s", rd_kafka_err2name(err),
                      rd_kafka_err2str(err));
        else
                reply("OK");
}

static int valid_topic_name(const char *s) {
        size_t n = strlen(s), i;
        if (n == 0 || n > 249 || !strcmp(s, ".") || !strcmp(s, ".."))
                return 0;
        for (i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                      c == '-'))
                        return 0;
        }
        return 1;
}

static void cmd_topic(int argc, char **argv) {
        long partitions, rf = default_rf;
        if (argc < 3 || argc > 4 || !valid_topic_name(argv[1]) ||
            parse_int(argv[2], 1, 100000, &partitions) ||
            (argc == 4 && parse_int(argv[3], 1, 1000, &rf))) {
                reply("ERR usage: topic <name> <partitions> [rf]");
                return;
        }
        reply_err(rd_kafka_mock_topic_create(mc, argv[1], (int)partitions,
                                             (int)rf));
}

static void cmd_push_errors(int argc, char **argv) {
        rd_kafka_resp_err_t *errs;
        long apikey, count;
        int i, ncodes = argc - 3;

        if (argc < 4 || parse_int(argv[1], 0, MAX_API_KEY - 1, &apikey) ||
            parse_int(argv[2], 1, 100000, &count) ||
            (ncodes != 1 && ncodes != count)) {
                reply("ERR usage: push_errors <apikey> <count> <errcode>... "
                      "(one errcode, or exactly <count> of them)");
                return;
        }
        errs = calloc((size_t)count, sizeof(*errs));
        if (!errs) {
                reply("ERR out of memory");
                return;
        }
        for (i = 0; i < count; i++) {
                const char *code = argv[3 + (ncodes == 1 ? 0 : i)];
                if (parse_err(code, &errs[i])) {
                        reply("ERR unknown error code: %s", code);
                        free(errs);
                        return;
                }
        }
        rd_kafka_mock_push_request_errors_array(mc, (int16_t)apikey,
                                                (size_t)count, errs);
        free(errs);
        reply("OK");
}

static void cmd_clear_errors(int argc, char **argv) {
        long apikey;
        int k;
        if (argc == 2 && parse_int(argv[1], 0, MAX_API_KEY - 1, &apikey) == 0) {
                rd_kafka_mock_clear_request_errors(mc, (int16_t)apikey);
        } else if (argc == 1) {
                for (k = 0; k < MAX_API_KEY; k++)
                        rd_kafka_mock_clear_request_errors(mc, (int16_t)k);
        } else {
                reply("ERR usage: clear_errors [apikey]");
                return;
        }
        reply("OK");
}

static void cmd_broker_updown(int argc, char **argv, int up) {
        long id;
        if (argc != 2 || parse_int(argv[1], -1, INT_MAX, &id)) {
                reply("ERR usage: %s <broker_id>", argv[0]);
                return;
        }
        reply_err(up ? rd_kafka_mock_broker_set_up(mc, (int32_t)id)
                     : rd_kafka_mock_broker_set_down(mc, (int32_t)id));
}

static void cmd_rtt(int argc, char **argv) {
        long id, ms;
        if (argc != 3 || parse_int(argv[1], -1, INT_MAX, &id) ||
            parse_int(argv[2], 0, 3600 * 1000, &ms)) {
                reply("ERR usage: rtt <broker_id> <ms>");
                return;
        }
        reply_err(rd_kafka_mock_broker_set_rtt(mc, (int32_t)id, (int)ms));
}

static void cmd_leader(int argc, char **argv) {
        long partition, id;
        if (argc != 4 || !valid_topic_name(argv[1]) ||
            parse_int(argv[2], 0, INT_MAX, &partition) ||
            parse_int(argv[3], -1, INT_MAX, &id)) {
                reply("ERR usage: leader <topic> <partition> <broker_id>");
                return;
        }
        reply_err(rd_kafka_mock_partition_set_leader(
            mc, argv[1], (int32_t)partition, (int32_t)id));
}

static void handle_line(char *line) {
        char *argv[MAX_ARGS];
        int argc = 0;
        char *save = NULL, *tok;

        for (tok = strtok_r(line, " \t\r", &save); tok;
             tok = strtok_r(NULL, " \t\r", &save)) {
                if (argc == MAX_ARGS) {
                        reply("ERR too many arguments");
                        return;
                }
                argv[argc++] = tok;
        }
        /* Blank lines get a reply too: one line in, one line out, always. */
        if (argc == 0)
                reply("ERR empty command");
        else if (!strcmp(argv[0], "ping"))
                reply("OK");
        else if (!strcmp(argv[0], "topic"))
                cmd_topic(argc, argv);
        else if (!strcmp(argv[0], "push_errors"))
                cmd_push_errors(argc, argv);
        else if (!strcmp(argv[0], "clear_errors"))
                cmd_clear_errors(argc, argv);
        else if (!strcmp(argv[0], "broker_down"))
                cmd_broker_updown(argc, argv, 0);
        else if (!strcmp(argv[0], "broker_up"))
                cmd_broker_updown(argc, argv, 1);
        else if (!strcmp(argv[0], "rtt"))
                cmd_rtt(argc, argv);
        else if (!strcmp(argv[0], "leader"))
                cmd_leader(argc, argv);
        else if (!strcmp(argv[0], "help"))
                reply("OK commands: ping | topic <name> <partitions> [rf] | "
                      "push_errors <apikey> <count> <errcode>... | "
                      "clear_errors [apikey] | broker_down <id> | "
                      "broker_up <id> | rtt <id> <ms> | "
                      "leader <topic> <partition> <id>");
        else
                reply("ERR unknown command: %s", argv[0]);
}

/* Serves stdin commands (unless no_stdin) until EOF or a termination signal.
 * sigfd delivers SIGTERM/SIGINT, which are blocked in every thread. */
static void serve(int sigfd, int no_stdin) {
        char buf[MAX_LINE];
        size_t len     = 0;
        int discarding = 0; /* inside an over-long line, until its '\n' */

        for (;;) {
                struct pollfd fds[2] = {{.fd = sigfd, .events = POLLIN},
                                        {.fd = STDIN_FILENO, .events = POLLIN}};
                nfds_t nfds          = no_stdin ? 1 : 2;
                ssize_t r;
                char *nl;

                if (poll(fds, nfds, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        perror("meterline-dev-broker: poll");
                        return;
                }
                if (fds[0].revents)
                        return; /* SIGTERM or SIGINT */
                if (nfds < 2 || !fds[1].revents)
                        continue;

                r = read(STDIN_FILENO, buf + len, sizeof(buf) - len);
                if (r < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (r <= 0)
                        return; /* EOF or error: the parent is gone */
                len += (size_t)r;

                while ((nl = memchr(buf, '\n', len))) {
                        size_t linelen = (size_t)(nl - buf);
                        *nl            = '\0';
                        if (discarding) {
                                discarding = 0;
                                reply("ERR line too long");
                        } else {
                                handle_line(buf);
                        }
                        len -= linelen + 1;
                        memmove(buf, nl + 1, len);
                }
                if (len == sizeof(buf)) {
                        discarding = 1;
                        len        = 0;
                }
        }
}

int main(int argc, char **argv) {
        struct topic_spec topics[MAX_TOPICS];
        int topic_cnt = 0, no_stdin = 0, i, sigfd;
        long brokers = 1, rf = -1;
        char errstr[512];
        rd_kafka_conf_t *conf;
        rd_kafka_t *rk;
        rd_kafka_resp_err_t err;
        sigset_t sigs;

        for (i = 1; i < argc; i++) {
                const char *a = argv[i];
                if (!strcmp(a, "--brokers") && i + 1 < argc) {
                        if (parse_int(argv[++i], 1, 64, &brokers))
                                die("--brokers must be 1..64");
                } else if (!strcmp(a, "--rf") && i + 1 < argc) {
                        if (parse_int(argv[++i], 1, 64, &rf))
                                die("--rf must be 1..64");
                } else if (!strcmp(a, "--topic") && i + 1 < argc) {
                        char *spec = argv[++i];
                        char *colon = strrchr(spec, ':');
                        long parts;
                        if (!colon)
                                die("--topic expects name:partitions, got %s",
                                    spec);
                        *colon = '\0';
                        if (!valid_topic_name(spec) ||
                            parse_int(colon + 1, 1, 100000, &parts))
                                die("invalid --topic %s:%s", spec, colon + 1);
                        if (topic_cnt == MAX_TOPICS)
                                die("too many --topic (max %d)", MAX_TOPICS);
                        topics[topic_cnt].name       = spec;
                        topics[topic_cnt].partitions = (int)parts;
                        topic_cnt++;
                } else if (!strcmp(a, "--no-stdin")) {
                        no_stdin = 1;
                } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
                        usage(stdout);
                        return 0;
                } else {
                        usage(stderr);
                        die("unknown or incomplete argument: %s", a);
                }
        }
        /* Same default as the mock's auto-created topics. */
        default_rf = rf > 0 ? (int)rf : (brokers < 3 ? (int)brokers : 3);

        /* Block the termination signals before librdkafka starts threads so
         * every thread inherits the mask and only signalfd observes them. */
        sigemptyset(&sigs);
        sigaddset(&sigs, SIGTERM);
        sigaddset(&sigs, SIGINT);
        if (pthread_sigmask(SIG_BLOCK, &sigs, NULL))
                die("pthread_sigmask failed");
        sigfd = signalfd(-1, &sigs, SFD_CLOEXEC);
        if (sigfd < 0)
                die("signalfd: %s", strerror(errno));
        /* A vanished reader of stdout/stderr must surface as EPIPE, not kill
         * the broker mid-shutdown. */
        signal(SIGPIPE, SIG_IGN);

        conf = rd_kafka_conf_new();
        /* The handle only hosts the mock cluster; it never connects anywhere. */
        if (rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof(errstr)))
                die("%s", errstr);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk)
                die("rd_kafka_new: %s", errstr);

        mc = rd_kafka_mock_cluster_new(rk, (int)brokers);
        if (!mc)
                die("rd_kafka_mock_cluster_new failed");

        /* Mock bug 1: Metadata reports ControllerId 0 while brokers are
         * numbered 1..N, so controller-routed kafkajs calls (idempotent
         * producer InitProducerId, admin) fail with "Broker 0 not found".
         * Report broker 1 as controller. (rd_kafka_mock_broker_add(mc, 0)
         * also fixes it, but adds a broker 0 that then leads some partitions,
         * so "--brokers 1" would not mean one broker and "broker_down 1"
         * would not take every partition down.) */
        rd_kafka_mock_set_controller_id(mc, 1);
        /* Mock bug 2: LeaveGroup v3+ from kafkajs is misparsed, so a leaving
         * member lingers until its session times out. Offer only v0-1. */
        err = rd_kafka_mock_set_apiversion(mc, APIKEY_LEAVEGROUP, 0, 1);
        if (err)
                die("rd_kafka_mock_set_apiversion(LeaveGroup): %s",
                    rd_kafka_err2str(err));
        /* First group join completes in milliseconds instead of 3 s. */
        rd_kafka_mock_group_initial_rebalance_delay_ms(mc, 0);

        for (i = 0; i < topic_cnt; i++) {
                err = rd_kafka_mock_topic_create(mc, topics[i].name,
                                                 topics[i].partitions,
                                                 default_rf);
                if (err)
                        die("creating topic %s: %s", topics[i].name,
                            rd_kafka_err2str(err));
        }

        printf("BOOTSTRAP %s\n", rd_kafka_mock_cluster_bootstraps(mc));
        fflush(stdout);

        serve(sigfd, no_stdin);

        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(rk);
        close(sigfd);
        return 0;
}
