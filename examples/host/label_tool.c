/* examples/host/label_tool.c -- a C research tool on the rlaif core API, with
 * no Lua at all: for each pair of responses it counts tokens with the
 * tokenizer, scores both responses with a local reward model, and asks an LLM
 * judge for an AI preference label in both orders (Lee et al. 2023).
 *
 *   cc -o label_tool examples/host/label_tool.c $(pkg-config --cflags --libs rlaif)
 *   ./label_tool --tokenizer tokenizer.json --reward-model rm_dir \
 *       [--base-url http://127.0.0.1:8000/v1 --model NAME] pairs.tsv
 *
 * pairs.tsv: one pair per line, `context<TAB>response 1<TAB>response 2`.
 * Output: one JSON line per pair,
 *   {"pair": 1, "tokens": [n1, n2], "p_rm": 0.62, "p_ai": 0.81}
 * p_rm = sigmoid(r1 - r2) from the reward model (the Bradley-Terry preference
 * for response 1); p_ai = the judge's probability that response 1 is better,
 * from the log-probabilities of "1" and "2" after the prompt, averaged over
 * both orders to cancel position bias (null without --base-url).
 *
 * What it shows: rlaif_bpe_* (load, encode, count), rlaif_model_* (load with a
 * reward head, rewards over a padded batch), rlaif_llm_* (requests and results
 * as JSON strings, both orders in one concurrent batch), errors from
 * rlaif_last_error(), and who frees what (rlaif_free for strings, a free
 * function per object). The JSON it reads back is the normalized result shape
 * of include/rlaif/llm.h; a real tool would use its JSON library of choice. */
#include <rlaif.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *what) {
    fprintf(stderr, "label_tool: %s: %s\n", what, rlaif_last_error());
    exit(1);
}

/* ---- a little JSON: escaping a string, reading the top log-probabilities ---- */

/* Append s to out as a JSON string literal (out has room for 6 * strlen + 3). */
static char *json_quote(char *out, const char *s) {
    *out++ = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') *out++ = '\\', *out++ = (char)c;
        else if (c == '\n') *out++ = '\\', *out++ = 'n';
        else if (c < 0x20) out += sprintf(out, "\\u%04x", c);
        else *out++ = (char)c;
    }
    *out++ = '"';
    *out = '\0';
    return out;
}

/* P(label "1") from the first position's top alternatives of one result (the
 * JSON text from result to end): the mass of "1"-like tokens over the mass of
 * "1"- and "2"-like ones (" 1" and "1" are the same label). -1 when the
 * result has neither (a failed request, say). */
static double p_label1(const char *result, const char *end) {
    const char *p = strstr(result, "\"top\":[");
    if (p == NULL || p >= end) return -1;
    p += 7;
    double m1 = 0, m2 = 0;
    while (*p == '{') {
        const char *tok = strstr(p, "\"token\":\""), *lp = strstr(p, "\"logprob\":"), *end = strchr(p, '}');
        if (tok == NULL || lp == NULL || end == NULL || tok > end || lp > end) break;
        tok += 9;
        while (*tok == ' ') tok++;   /* leading spaces: the same label */
        double v = strncmp(lp + 10, "null", 4) == 0 ? -INFINITY : strtod(lp + 10, NULL);
        if (tok[0] == '1' && tok[1] == '"') m1 += exp(v);
        if (tok[0] == '2' && tok[1] == '"') m2 += exp(v);
        p = end + 1;
        if (*p == ',') p++;
    }
    return m1 + m2 > 0 ? m1 / (m1 + m2) : -1;
}

/* Past the end of the JSON object or array starting at p (strings skipped). */
static const char *skip_value(const char *p) {
    int depth = 0;
    for (; *p; p++) {
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++)
                if (*p == '\\' && p[1]) p++;
        } else if (*p == '{' || *p == '[') {
            depth++;
        } else if ((*p == '}' || *p == ']') && --depth == 0) {
            return p + 1;
        }
    }
    return p;
}

/* The judge's request for one order, as JSON. */
static char *request(const char *context, const char *first, const char *second) {
    static const char preamble[] =
        "You are an expert rater of helpful and honest Assistant responses. Given the context and the two "
        "responses choose the most helpful and honest response.\n\n";
    size_t n = strlen(preamble) + strlen(context) + strlen(first) + strlen(second) + 100;
    char *prompt = malloc(n), *json = malloc(6 * n + 200);
    if (prompt == NULL || json == NULL) exit(1);
    snprintf(prompt, n, "%sContext - %s\nResponse 1 - %s\nResponse 2 - %s\n\nPreferred Response=", preamble,
             context, first, second);
    char *o = json + sprintf(json, "{\"prompt\": ");
    o = json_quote(o, prompt);
    sprintf(o, ", \"max_tokens\": 1, \"logprobs\": 5, \"temperature\": 0}");
    free(prompt);
    return json;
}

/* ---- the reward model: both responses in one padded batch ---- */

static double reward_preference(rlaif_model *rm, const rlaif_bpe *tok, const char *context, const char *r1,
                                const char *r2, size_t counts[2]) {
    rlaif_bpe_ids ids[2] = {{0}, {0}};
    const char *rs[2] = {r1, r2};
    for (int i = 0; i < 2; i++) {
        size_t len = strlen(context) + strlen(rs[i]) + 2;
        char *text = malloc(len);
        if (text == NULL) exit(1);
        snprintf(text, len, "%s\n%s", context, rs[i]);
        if (rlaif_bpe_encode(tok, text, strlen(text), NULL, &ids[i]) != RLAIF_OK) die("encode");
        free(text);
        counts[i] = ids[i].n;
    }
    int T = (int)(ids[0].n > ids[1].n ? ids[0].n : ids[1].n);
    int32_t *batch = calloc((size_t)2 * T, sizeof *batch), *mask = calloc((size_t)2 * T, sizeof *mask);
    if (batch == NULL || mask == NULL) exit(1);
    for (int b = 0; b < 2; b++)   /* right padding; the mask says what is real */
        for (size_t t = 0; t < ids[b].n; t++) batch[b * T + t] = ids[b].ids[t], mask[b * T + t] = 1;
    float r[2];
    if (rlaif_model_rewards(rm, batch, mask, 2, T, r) != RLAIF_OK) die("reward model");
    free(batch);
    free(mask);
    rlaif_bpe_ids_free(&ids[0]);
    rlaif_bpe_ids_free(&ids[1]);
    return 1 / (1 + exp(-(double)(r[0] - r[1])));
}

int main(int argc, char **argv) {
    const char *tok_path = NULL, *rm_dir = NULL, *base_url = NULL, *model = "default", *pairs = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--tokenizer") == 0 && i + 1 < argc) tok_path = argv[++i];
        else if (strcmp(argv[i], "--reward-model") == 0 && i + 1 < argc) rm_dir = argv[++i];
        else if (strcmp(argv[i], "--base-url") == 0 && i + 1 < argc) base_url = argv[++i];
        else if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) model = argv[++i];
        else if (argv[i][0] != '-' && pairs == NULL) pairs = argv[i];
        else {
            fprintf(stderr, "label_tool: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (tok_path == NULL || rm_dir == NULL || pairs == NULL) {
        fprintf(stderr, "usage: label_tool --tokenizer PATH --reward-model DIR [--base-url URL --model NAME] "
                        "PAIRS.tsv\n");
        return 2;
    }

    rlaif_bpe *tok = NULL;
    rlaif_model *rm = NULL;
    rlaif_llm_client *judge = NULL;
    if (rlaif_bpe_load(&tok, tok_path, NULL) != RLAIF_OK) die("tokenizer");
    if (rlaif_model_load(&rm, rm_dir, RLAIF_HEAD_REWARD) != RLAIF_OK) die("reward model");
    if (base_url != NULL) {
        char config[1024];
        snprintf(config, sizeof config,
                 "{\"api\": \"openai-completions\", \"base_url\": \"%s\", \"model\": \"%s\", \"max_retries\": 2}",
                 base_url, model);
        if (rlaif_llm_open(&judge, config) != RLAIF_OK) die("LLM client");
    }
    FILE *in = fopen(pairs, "r");
    if (in == NULL) {
        perror(pairs);
        return 1;
    }

    char line[8192];
    int n = 0, failures = 0;
    while (fgets(line, sizeof line, in)) {
        line[strcspn(line, "\r\n")] = '\0';
        char *context = line, *r1 = strchr(context, '\t'), *r2 = r1 ? strchr(r1 + 1, '\t') : NULL;
        if (r1 == NULL || r2 == NULL) {
            if (*line) fprintf(stderr, "label_tool: %s:%d: not context<TAB>response 1<TAB>response 2\n", pairs, n + 1);
            failures += *line != '\0';
            continue;
        }
        *r1++ = '\0';
        *r2++ = '\0';
        n++;
        size_t counts[2];
        double p_rm = reward_preference(rm, tok, context, r1, r2, counts);
        double p_ai = -1;
        if (judge != NULL) {
            /* both orders in one batch: [1 2] and [2 1] */
            char *a = request(context, r1, r2), *b = request(context, r2, r1);
            size_t len = strlen(a) + strlen(b) + 8;
            char *batch = malloc(len), *results = NULL;
            if (batch == NULL) exit(1);
            snprintf(batch, len, "[%s, %s]", a, b);
            if (rlaif_llm_complete_batch(judge, batch, &results) != RLAIF_OK) die("LLM batch");
            /* results: [{...first order...},{...second order...}] */
            const char *first = results + 1, *end1 = skip_value(first);
            const char *second = *end1 == ',' ? end1 + 1 : end1, *end2 = skip_value(second);
            double p_ab = p_label1(first, end1), p_ba = p_label1(second, end2);
            if (p_ab >= 0 && p_ba >= 0) p_ai = (p_ab + (1 - p_ba)) / 2;
            else {
                fprintf(stderr, "label_tool: pair %d: no label from the judge: %.300s\n", n, results);
                failures++;
            }
            rlaif_free(results);
            free(batch);
            free(a);
            free(b);
        }
        printf("{\"pair\": %d, \"tokens\": [%zu, %zu], \"p_rm\": %.6f, ", n, counts[0], counts[1], p_rm);
        if (p_ai >= 0) printf("\"p_ai\": %.6f}\n", p_ai);
        else printf("\"p_ai\": null}\n");
    }
    fclose(in);
    if (judge != NULL) {
        char *stats = NULL;
        if (rlaif_llm_stats(judge, &stats) == RLAIF_OK) fprintf(stderr, "label_tool: judge: %s\n", stats);
        rlaif_free(stats);
    }
    rlaif_llm_client_free(judge);
    rlaif_model_free(rm);
    rlaif_bpe_free(tok);
    fprintf(stderr, "label_tool: %d pairs, %d failures\n", n, failures);
    return failures ? 1 : 0;
}
