/* mmsd's config file: sections, both option tables, inheritance, printing,
 * and every way a file is refused with FILE:LINE: reason. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"
#include "harness.h"
#include "overlay/compose.h"

static const char *write_conf(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", mms_test_tmpdir(), name);
    FILE *f = fopen(path, "w");
    if (!f)
        return NULL;
    fputs(text, f);
    fclose(f);
    return path;
}

/* Loads `text`; on success returns 0 and `c` must be freed. */
static int load(const char *text, struct mmsd_config *c, struct mms_err *err)
{
    const char *path = write_conf("t.conf", text);
    return path ? mmsd_config_load(c, path, err) : -EIO;
}

/* The file must be refused, the message must start with t.conf:LINE: and
 * contain `want`, and the config must be left empty. */
static void refused(const char *text, int line, const char *want)
{
    struct mmsd_config c;
    struct mms_err err = {{0}};
    char prefix[600];
    int rc = load(text, &c, &err);
    snprintf(prefix, sizeof(prefix), "%s/t.conf:%d: ", mms_test_tmpdir(), line);
    CHECK_MSG(rc < 0, "accepted: %s", text);
    if (rc >= 0) {
        mmsd_config_free(&c);
        return;
    }
    CHECK_MSG(!strncmp(err.msg, prefix, strlen(prefix)), "want line %d, got '%s'", line, err.msg);
    CHECK_MSG(strstr(err.msg, want) != NULL, "want '%s' in '%s'", want, err.msg);
    CHECK_MSG(!strchr(err.msg, '\n'), "not one line: '%s'", err.msg);
    CHECK(c.npipelines == 0 && !c.pipelines && !c.path && !c.d.listen);
    mmsd_config_free(&c);
}

static void fmt(const struct mmsd_pipeline_conf *pc, const char *name, char *buf, size_t len)
{
    mms_option_format(&pc->o, mms_option_find(name), buf, len);
}

/* ---- accepted ---- */

static void minimal_config(void)
{
    struct mmsd_config c;
    struct mms_err err;
    int rc = load("[mmsd]\nlisten=127.0.0.1:9000\n[pipeline x]\ninput=/dev/video0\n", &c, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc)
        return;
    CHECK(!strcmp(c.d.listen, "127.0.0.1:9000") && c.d.log_level == MMSD_LOG_INFO);
    CHECK(c.d.threads == 0 && !c.d.model && !c.d.token_file && !c.d.state_dir);
    CHECK(c.npipelines == 1 && !strcmp(c.pipelines[0].name, "x") && c.pipelines[0].line == 3);
    const struct mms_pipeline_opts *o = &c.pipelines[0].o;
    CHECK(!strcmp(o->input, "/dev/video0") && o->noutputs == 0 && !o->model);
    CHECK(o->style == MMS_STYLE_FILL && o->every == 1 && o->segment_seconds == 600);
    CHECK(!o->record_dir && o->mode == MMS_MODE_AUTO);
    CHECK(strstr(c.path, "t.conf") != NULL);
    mmsd_config_free(&c);
    mmsd_config_free(&c); /* freeing twice is harmless: free leaves it empty */
}

static const char full_text[] = "\xEF\xBB\xBF; two operating rooms\n"
                                "[mmsd]\n"
                                "listen = 0.0.0.0:8090\n"
                                "token_file = /etc/mmsd/token\n"
                                "log_level = debug ; inline comment\n"
                                "\n"
                                "[pipeline or1]\n"
                                "  input = /dev/video0\n"
                                "  input-option = video_size=1280x720\n"
                                "  input_option = framerate=30\n"
                                "  output = /var/lib/mmsd/or1.mp4\n"
                                "  output = udp://127.0.0.1:5000\n"
                                "  output = null\n"
                                "  window = yes\n"
                                "  style = outline\n"
                                "  alpha = 0.3\n"
                                "  color = ff0000\n"
                                "  every = 2\n"
                                "  mode = live\n"
                                "  meta = /var/lib/mmsd/or1.jsonl\n"
                                "  model = /opt/m.safetensors\n"
                                "  threads = 3\n"
                                "  size = 288x512\n"
                                "  precision = fp32\n"
                                "  record_dir = /var/lib/mmsd/or1\n"
                                "  segment_seconds = 300\n"
                                "# the second room\r\n"
                                "[pipeline or-2]\r\n"
                                "input=srt://10.0.0.5:9000?mode=caller\r\n"
                                "output=a.mkv\r\n"
                                "output=b.ts\r\n";

static void full_config_two_pipelines(void)
{
    struct mmsd_config c;
    struct mms_err err;
    char buf[256];
    int rc = load(full_text, &c, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc)
        return;
    CHECK(!strcmp(c.d.listen, "0.0.0.0:8090") && c.d.log_level == MMSD_LOG_DEBUG);
    CHECK(!strcmp(c.d.token_file, "/etc/mmsd/token"));
    CHECK(c.npipelines == 2);
    const struct mmsd_pipeline_conf *a = mmsd_config_find(&c, "or1");
    const struct mmsd_pipeline_conf *b = mmsd_config_find(&c, "or-2");
    CHECK(a == &c.pipelines[0] && b == &c.pipelines[1] && !mmsd_config_find(&c, "or3"));
    if (!a || !b)
        goto out;
    CHECK(a->o.noutputs == 3 && !strcmp(a->o.outputs[1], "udp://127.0.0.1:5000"));
    CHECK(a->o.ninput_options == 2 && !strcmp(a->o.input_options[1], "framerate=30"));
    CHECK(a->o.window == 1 && a->o.style == MMS_STYLE_OUTLINE && a->o.every == 2);
    CHECK(a->o.color == 0xff0000 && a->o.mode == MMS_MODE_LIVE && a->o.threads == 3);
    CHECK(a->o.net_h == 288 && a->o.net_w == 512 && a->o.segment_seconds == 300);
    CHECK(!strcmp(a->o.record_dir, "/var/lib/mmsd/or1"));
    CHECK(!strcmp(a->o.model, "/opt/m.safetensors"));
    fmt(a, "alpha", buf, sizeof(buf));
    CHECK(!strcmp(buf, "0.3"));
    CHECK(b->line == 28 && b->o.noutputs == 2 && !strcmp(b->o.outputs[1], "b.ts"));
    CHECK(!strcmp(b->o.input, "srt://10.0.0.5:9000?mode=caller"));
out:
    mmsd_config_free(&c);
}

static void mmsd_defaults_inherited(void)
{
    struct mmsd_config c;
    struct mms_err err;
    /* [mmsd] after the pipelines: inheritance does not depend on order. */
    int rc = load("[pipeline a]\ninput=x\nthreads=2\n"
                  "[pipeline b]\ninput=y\n"
                  "[pipeline c]\ninput=z\nmodel=/own.safetensors\n"
                  "[mmsd]\nmodel=/shared.safetensors\nthreads=4\n",
                  &c, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc)
        return;
    CHECK(c.pipelines[0].o.threads == 2 && !strcmp(c.pipelines[0].o.model, "/shared.safetensors"));
    CHECK(c.pipelines[1].o.threads == 4 && !strcmp(c.pipelines[1].o.model, "/shared.safetensors"));
    CHECK(c.pipelines[2].o.threads == 4 && !strcmp(c.pipelines[2].o.model, "/own.safetensors"));
    mmsd_config_free(&c);
}

static void no_mmsd_section_means_defaults(void)
{
    struct mmsd_config c;
    struct mms_err err;
    int rc = load("[pipeline x]\ninput=lavfi:testsrc\n", &c, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc)
        return;
    CHECK(!strcmp(c.d.listen, "127.0.0.1:8089") && c.d.log_level == MMSD_LOG_INFO);
    CHECK(!c.pipelines[0].o.model && c.pipelines[0].o.threads == 0);
    mmsd_config_free(&c);
    rc = load("# nothing yet\n", &c, &err);
    CHECK_MSG(rc == 0 && c.npipelines == 0, "%s", err.msg);
    mmsd_config_free(&c);
}

static void hyphens_and_underscores(void)
{
    struct mmsd_config c;
    struct mms_err err;
    int rc = load("[mmsd]\nlog-level=err\ntoken-file=/t\n"
                  "[pipeline x]\ninput=a\nrecord-dir=/r\nsegment-seconds=60\ninput_option=k=v\n",
                  &c, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc)
        return;
    CHECK(c.d.log_level == MMSD_LOG_ERR && !strcmp(c.d.token_file, "/t"));
    CHECK(!strcmp(c.pipelines[0].o.record_dir, "/r") && c.pipelines[0].o.segment_seconds == 60);
    CHECK(c.pipelines[0].o.ninput_options == 1);
    CHECK(!strcmp(c.pipelines[0].o.input_options[0], "k=v"));
    CHECK(mmsd_option_find("log_level") == mmsd_option_find("log-level"));
    mmsd_config_free(&c);
}

static int print_to(const struct mmsd_config *c, const char *name, char *out, size_t len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", mms_test_tmpdir(), name);
    FILE *f = fopen(path, "w+");
    if (!f)
        return -1;
    int rc = mmsd_config_print(c, f);
    rewind(f);
    size_t n = fread(out, 1, len - 1, f);
    out[n] = '\0';
    fclose(f);
    return rc;
}

static void print_config_round_trips(void)
{
    struct mmsd_config c, again;
    struct mms_err err;
    static char first[32768], second[32768];
    int rc = load(full_text, &c, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc)
        return;
    CHECK(print_to(&c, "p1.conf", first, sizeof(first)) == 0);
    /* Every key of both tables is named, set or commented out. */
    CHECK(strstr(first, "\ntoken_file = /etc/mmsd/token\n") && strstr(first, "\nmeta = "));
    CHECK(strstr(first, "\nrecord_dir = /var/lib/mmsd/or1\n"));
    CHECK(strstr(first, "\nmeta = /var/lib/mmsd/or1.jsonl\n") &&
          strstr(first, "#input_option = K=V"));
    CHECK(strstr(first, "\nsegment_seconds = 600\n") && strstr(first, "\nlog_level = debug\n"));
    rc = load(first, &again, &err);
    CHECK_MSG(rc == 0, "printed config does not load: %s", err.msg);
    if (rc)
        goto out;
    CHECK(again.npipelines == c.npipelines);
    for (int i = 0; i < c.npipelines && i < again.npipelines; i++)
        CHECK_MSG(mmsd_pipeline_conf_same(&c.pipelines[i], &again.pipelines[i]), "pipeline %d", i);
    CHECK(!strcmp(again.d.listen, c.d.listen) && !strcmp(again.d.token_file, c.d.token_file));
    CHECK(again.d.log_level == c.d.log_level && again.d.threads == c.d.threads);
    CHECK(print_to(&again, "p2.conf", second, sizeof(second)) == 0);
    CHECK_MSG(!strcmp(first, second), "print is not a fixed point");
    mmsd_config_free(&again);
out:
    mmsd_config_free(&c);
}

/* --print-config shows no secret of a URL or an input option
 * (core/redact.h), and what it prints still loads. Made-up secrets. */
static void print_config_hides_secrets(void)
{
    struct mmsd_config c, again;
    struct mms_err err;
    static char out[32768];
    int rc = load("[pipeline a]\ninput = rtsp://admin:CamPassw0rd@10.0.0.5/s1\n"
                  "input_option = passphrase=Sup3rSecret1\n"
                  "input_option = headers=Authorization: Bearer t0k3nValue\n"
                  "input_option = cookies=sid=C00kieValue; path=/\n"
                  "input_option = srtp_in_params=SrtpM4sterKeyBase64\n"
                  "output = rtmp://live.example.com/app/live_1234_abcdef\n"
                  "output = srt://h:9000?mode=caller&passphrase=Sup3rSecret2\n",
                  &c, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc)
        return;
    CHECK(print_to(&c, "secret.conf", out, sizeof(out)) == 0);
    static const char *const secrets[] = {"CamPassw0rd", "Sup3rSecret", "t0k3nValue",
                                          "live_1234_abcdef", "C00kieValue", "SrtpM4sterKey"};
    for (size_t i = 0; i < sizeof(secrets) / sizeof(*secrets); i++)
        CHECK_MSG(!strstr(out, secrets[i]), "secret %zu is printed", i);
    CHECK(strstr(out, "\ninput = rtsp://***@10.0.0.5/s1\n"));
    CHECK(strstr(out, "\ninput_option = passphrase=***\n"));
    CHECK(strstr(out, "\ninput_option = headers=***\n"));
    CHECK(strstr(out, "\ninput_option = cookies=***\n"));
    CHECK(strstr(out, "\ninput_option = srtp_in_params=***\n"));
    CHECK(strstr(out, "\noutput = rtmp://live.example.com/app/***\n"));
    CHECK(strstr(out, "\noutput = srt://h:9000?mode=caller&passphrase=***\n"));
    rc = load(out, &again, &err);
    CHECK_MSG(rc == 0, "the printed config does not load: %s", err.msg);
    if (!rc)
        mmsd_config_free(&again);
    mmsd_config_free(&c);
}

/* An SRT stream ID is the publish key on many ingest servers. */
static void print_config_hides_streamid(void)
{
    struct mmsd_config c;
    struct mms_err err;
    static char out[32768];
    int rc = load("[pipeline a]\ninput = srt://ingest.example.com:9000?mode=caller\n"
                  "input_option = streamid=#!::r=live/Str3amK3y1,m=publish\n"
                  "output = srt://h:9000?mode=caller&streamid=#!::r=live/Str3amK3y2,m=publish\n",
                  &c, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc)
        return;
    CHECK(print_to(&c, "streamid.conf", out, sizeof(out)) == 0);
    CHECK_MSG(!strstr(out, "Str3amK3y"), "a stream ID is printed");
    CHECK(strstr(out, "\ninput_option = streamid=***\n"));
    CHECK(strstr(out, "\noutput = srt://h:9000?mode=caller&streamid=***\n"));
    mmsd_config_free(&c);
}

/* An input option put together in code without '=' (a file with one is
 * refused) may be a secret typed with ':' for '=': not printed. */
static void print_config_hides_an_input_option_without_equals(void)
{
    struct mmsd_config c;
    struct mms_err err;
    static char out[32768];
    int rc = load("[pipeline a]\ninput = srt://h:9000\ninput_option = latency=200\n", &c, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc)
        return;
    free(c.pipelines[0].o.input_options[0]);
    c.pipelines[0].o.input_options[0] = strdup("passphrase:Sup3rSecret1");
    CHECK(print_to(&c, "noeq.conf", out, sizeof(out)) == 0);
    CHECK_MSG(!strstr(out, "Sup3rSecret1"), "the option is printed");
    CHECK(strstr(out, "\ninput_option = ***\n"));
    mmsd_config_free(&c);
}

/* Values without secrets print as they were written. */
static void print_config_keeps_plain_values(void)
{
    struct mmsd_config c;
    struct mms_err err;
    static char out[32768];
    int rc = load("[pipeline a]\ninput = rtsp://10.0.0.5:554/s1\n"
                  "input_option = rtsp_transport=tcp\n"
                  "output = srt://h:9000?mode=caller&latency=200\noutput = /var/lib/x.mp4\n",
                  &c, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc)
        return;
    CHECK(print_to(&c, "plain.conf", out, sizeof(out)) == 0);
    CHECK(strstr(out, "\ninput = rtsp://10.0.0.5:554/s1\n"));
    CHECK(strstr(out, "\ninput_option = rtsp_transport=tcp\n"));
    CHECK(strstr(out, "\noutput = srt://h:9000?mode=caller&latency=200\n"));
    CHECK(strstr(out, "\noutput = /var/lib/x.mp4\n"));
    mmsd_config_free(&c);
}

static void same_sees_every_difference(void)
{
    struct mmsd_config c;
    struct mms_err err;
    int rc = load("[pipeline a]\ninput=x\noutput=o\n[pipeline b]\ninput=x\noutput=o\n"
                  "[pipeline c]\ninput=x\noutput=o\nalpha=0.5\n"
                  "[pipeline d]\ninput=x\noutput=o\noutput=p\n",
                  &c, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc)
        return;
    struct mmsd_pipeline_conf renamed = c.pipelines[1];
    renamed.name = c.pipelines[0].name;
    CHECK(mmsd_pipeline_conf_same(&c.pipelines[0], &c.pipelines[0]));
    CHECK(mmsd_pipeline_conf_same(&c.pipelines[0], &renamed));
    CHECK(!mmsd_pipeline_conf_same(&c.pipelines[0], &c.pipelines[1])); /* name */
    renamed = c.pipelines[2];
    renamed.name = c.pipelines[0].name;
    CHECK(!mmsd_pipeline_conf_same(&c.pipelines[0], &renamed)); /* alpha */
    renamed = c.pipelines[3];
    renamed.name = c.pipelines[0].name;
    CHECK(!mmsd_pipeline_conf_same(&c.pipelines[0], &renamed)); /* outputs */
    mmsd_config_free(&c);
}

static void option_table_values(void)
{
    struct mmsd_options o;
    struct mms_err err;
    char buf[64];
    CHECK(mmsd_options_defaults(&o) == 0);
    CHECK(mmsd_option_set(&o, "log_level", "warning", &err) == 0);
    CHECK(o.log_level == MMSD_LOG_WARNING);
    mmsd_option_format(&o, mmsd_option_find("log_level"), buf, sizeof(buf));
    CHECK(!strcmp(buf, "warning"));
    mmsd_option_format(&o, mmsd_option_find("token_file"), buf, sizeof(buf));
    CHECK(!strcmp(buf, ""));
    CHECK(!strcmp(mmsd_log_level_name(MMSD_LOG_NOTICE), "notice"));
    CHECK(!mmsd_option_find("verbose") && !mmsd_option_find("log__level"));
    CHECK(mmsd_option_name_eq("a-b_c", "a_b-c") && !mmsd_option_name_eq("ab", "abc"));
    mmsd_options_free(&o);
}

static void option_table_refusals(void)
{
    static const char *const bad[][2] = {
        {"threads", "257"},       {"threads", "-1"},    {"threads", "1.5"}, {"threads", "four"},
        {"log_level", "verbose"}, {"log_level", "ERR"}, {"listen", "x"},    {"model", ""},
    };
    struct mmsd_options o;
    mmsd_options_defaults(&o);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct mms_err err;
        CHECK_MSG(mmsd_option_set(&o, bad[i][0], bad[i][1], &err) == -EINVAL, "%s=%s", bad[i][0],
                  bad[i][1]);
        CHECK(strstr(err.msg, bad[i][0]) != NULL);
    }
    struct mms_err err;
    CHECK(mmsd_option_set(&o, "input", "x", &err) == -ENOENT && strstr(err.msg, "input"));
    CHECK(!strcmp(o.listen, "127.0.0.1:8089") && o.threads == 0); /* untouched */
    mmsd_options_free(&o);
}

/* ---- refused ---- */

static void unknown_keys(void)
{
    refused("[mmsd]\nlisten=127.0.0.1:1\n[pipeline x]\ninput=a\ncolour=ff0000\n", 5,
            "unknown key 'colour' in [pipeline x]");
    refused("[mmsd]\nverbose=yes\n", 2, "unknown key 'verbose' in [mmsd]");
    refused("[mmsd]\ninput=a\n", 2, "belongs in [pipeline NAME]");
    refused("[pipeline x]\ninput=a\nlog_level=debug\n", 3, "belongs in [mmsd]");
    refused("[pipeline x]\ninput=a\nrecord__dir=/r\n", 3, "record__dir");
}

static void bad_values(void)
{
    refused("[pipeline x]\ninput=a\nalpha=2\n", 3, "alpha=\"2\": out of range 0..1");
    refused("[pipeline x]\ninput=a\nstyle=glow\n", 3, "style=\"glow\"");
    refused("[pipeline x]\ninput=a\nsegment_seconds=0\n", 3, "segment_seconds=\"0\": out of range");
    refused("[pipeline x]\ninput=a\nsegment-seconds=86401\n", 3, "segment-seconds=\"86401\"");
    refused("[pipeline x]\ninput=\n", 2, "empty");
    refused("[mmsd]\nthreads=300\n", 2, "threads=\"300\": out of range");
    refused("[mmsd]\nlog_level=verbose\n", 2, "expected err, warning, notice, info or debug");
    refused("[mmsd]\nstate_dir=var/lib/mmsd\n", 2, "state_dir=\"var/lib/mmsd\": not an absolute path");
    refused("[pipeline x]\ninput=a\noutput=1\noutput=2\noutput=3\noutput=4\noutput=5\n"
            "output=6\noutput=7\noutput=8\noutput=9\n",
            11, "output: at most 8");
}

/* Refused at `line`, saying `want`, without `secret` anywhere in the
 * message: it goes to the journal and /healthz. */
static void refused_unshown(const char *text, int line, const char *want, const char *secret)
{
    struct mmsd_config c;
    struct mms_err err = {{0}};
    refused(text, line, want);
    if (load(text, &c, &err) == 0) {
        mmsd_config_free(&c);
        return;
    }
    CHECK_MSG(!strstr(err.msg, secret), "the value is shown: '%s'", err.msg);
}

/* A secret typed with ':' for '=' is refused by its line, not shown. */
static void input_option_without_equals(void)
{
    refused_unshown("[pipeline x]\ninput=srt://h:9000\ninput_option = passphrase:Sup3rSecret1\n",
                    3, "input_option: not KEY=VALUE", "Sup3rSecret1");
}

static void input_option_without_key(void)
{
    refused_unshown("[pipeline x]\ninput=srt://h:9000\ninput-option = =Sup3rSecret1\n", 3,
                    "input-option: not KEY=VALUE", "Sup3rSecret1");
}

/* The value is the demuxer's: ':' and more '=' in it are its business. */
static void input_option_with_equals_loads(void)
{
    struct mmsd_config c;
    struct mms_err err;
    int rc = load("[pipeline x]\ninput=srt://h:9000\ninput_option = passphrase=Sup3r:Secret=1\n"
                  "input_option = rtsp_transport=tcp\n",
                  &c, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc)
        return;
    CHECK_EQ(c.pipelines[0].o.ninput_options, 2);
    CHECK_STR_EQ(c.pipelines[0].o.input_options[0], "passphrase=Sup3r:Secret=1");
    CHECK_STR_EQ(c.pipelines[0].o.input_options[1], "rtsp_transport=tcp");
    mmsd_config_free(&c);
}

static void bad_listen(void)
{
    refused("[mmsd]\nlisten=localhost:8089\n", 2, "expected IPv4:PORT or [IPv6]:PORT");
    refused("[mmsd]\nlisten=127.0.0.1:99999\n", 2, "listen=\"127.0.0.1:99999\"");
    refused("[mmsd]\nlisten=8089\n", 2, "listen=");
    /* Off loopback without a token: the line of listen is to blame. */
    refused("[mmsd]\nlog_level=info\nlisten=0.0.0.0:8089\n", 3, "token_file is required");
}

static void unknown_and_bad_sections(void)
{
    refused("[mmsd]\n[server]\nport=1\n", 2, "unknown section [server]");
    refused("[Pipeline x]\ninput=a\n", 1, "unknown section");
    refused("[pipeline]\ninput=a\n", 1, "needs a name");
    refused("[pipeline a/b]\ninput=a\n", 1, "pipeline name 'a/b'");
    refused("[pipeline -x]\ninput=a\n", 1, "pipeline name");
    refused("[pipeline abcdefghijabcdefghijabcdefghijabc]\ninput=a\n", 1, "up to 32");
    refused("[mmsd] threads=2\n", 1, "text after the section header");
}

static void duplicates(void)
{
    refused("[pipeline a]\ninput=x\n\n[pipeline a]\ninput=y\n", 4,
            "duplicate [pipeline a] (the first is on line 1)");
    /* An empty duplicate is still a duplicate, even right after the first. */
    refused("[pipeline a]\n[pipeline a]\ninput=y\n", 2, "duplicate [pipeline a]");
    refused("[mmsd]\n[pipeline a]\ninput=x\n[mmsd]\n", 4, "second [mmsd] section");
    refused("[pipeline a]\ninput=x\nalpha=0.1\nalpha=0.2\n", 4, "'alpha' is already set on line 3");
    refused("[mmsd]\nlisten=127.0.0.1:1\nlisten=127.0.0.1:2\n", 3, "already set on line 2");
}

static void pipeline_without_input(void)
{
    refused("[mmsd]\n\n[pipeline or1]\noutput=a.mp4\n", 3, "[pipeline or1] has no input");
    refused("[pipeline a]\ninput=x\n[pipeline b]\n", 3, "[pipeline b] has no input");
}

static void key_outside_sections(void)
{
    refused("listen=127.0.0.1:1\n[mmsd]\n", 1, "'listen' is outside any section");
    refused("# comment\n\ninput=x\n[pipeline a]\ninput=x\n", 3, "outside any section");
}

static void malformed_lines(void)
{
    refused("[mmsd]\nthis is not a key\n", 2, "malformed line");
    refused("[pipeline x\ninput=a\n", 1, "malformed line");
    /* The first error wins, whichever part of the parser found it. */
    refused("[mmsd]\nnonsense\n[pipeline x]\ncolour=1\n", 2, "malformed line");
    refused("[mmsd]\ncolour=1\nnonsense\n", 2, "unknown key 'colour'");
    char text[512] = "[pipeline x]\ninput=";
    memset(text + strlen(text), 'a', 300);
    strcat(text, "\n");
    refused(text, 2, "line longer than");
}

/* Found by fuzz_config: inih takes \v and \f as indentation, and an
 * indented line as the previous value's continuation, comment and all. */
static void vertical_blanks_indent_a_key(void)
{
    struct mmsd_config c;
    struct mms_err err;
    int rc = load("[pipeline x]\ninput=a.mp4\n\t\v\foutput = b.ts ; note\n", &c, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc)
        return;
    const struct mms_pipeline_opts *o = &c.pipelines[0].o;
    CHECK(!strcmp(o->input, "a.mp4") && o->noutputs == 1 && !strcmp(o->outputs[0], "b.ts"));
    mmsd_config_free(&c);
}

static void vertical_blanks_continue_nothing(void)
{
    refused("[pipeline x]\ninput=a.mp4\noutput=b.ts\n\vc.ts ; note\n", 4, "malformed line");
}

static void missing_file(void)
{
    struct mmsd_config c;
    struct mms_err err;
    char path[512];
    snprintf(path, sizeof(path), "%s/nope.conf", mms_test_tmpdir());
    CHECK(mmsd_config_load(&c, path, &err) == -ENOENT);
    CHECK(strstr(err.msg, path) && strstr(err.msg, "No such file"));
    CHECK(c.npipelines == 0 && !c.path);
    mmsd_config_free(&c);
    CHECK(mmsd_config_load(&c, mms_test_tmpdir(), &err) == -EISDIR); /* a directory */
    CHECK(strstr(err.msg, mms_test_tmpdir()) != NULL);
    mmsd_config_free(&c);
}

MMS_TESTS(T(minimal_config), T(full_config_two_pipelines), T(mmsd_defaults_inherited),
          T(no_mmsd_section_means_defaults), T(hyphens_and_underscores),
          T(print_config_round_trips), T(print_config_hides_secrets),
          T(print_config_hides_streamid), T(print_config_hides_an_input_option_without_equals),
          T(print_config_keeps_plain_values), T(same_sees_every_difference),
          T(option_table_values), T(option_table_refusals), T(unknown_keys), T(bad_values),
          T(input_option_without_equals), T(input_option_without_key),
          T(input_option_with_equals_loads),
          T(bad_listen), T(unknown_and_bad_sections), T(duplicates), T(pipeline_without_input),
          T(key_outside_sections), T(malformed_lines), T(vertical_blanks_indent_a_key),
          T(vertical_blanks_continue_nothing), T(missing_file))
