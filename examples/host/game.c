/* examples/host/game.c -- a game-style host for rlaif: a world ticks, a Lua
 * script (game.lua, sandboxed) decides each tick what every NPC says by
 * asking the AI labeler which of two lines fits the situation, and the
 * instruction budget cuts off the one tick where the script misbehaves.
 *
 *   cc -o game examples/host/game.c $(pkg-config --cflags --libs rlaif)
 *   ./game DIR [TICKS]      DIR holds game.lua (and tokenizer.json for the local backend)
 *
 * The LLM: RLAIF_GAME_BASE_URL (an OpenAI-compatible /v1 endpoint, e.g. vLLM or
 * llama.cpp; RLAIF_GAME_MODEL names the model) or, without it, the in-process
 * local backend on a tiny random model (offline; see game.lua).
 *
 * What it shows: the state a host owns (rlaif_state_new with a root, a memory
 * limit and an instruction budget), passing the world in and the decisions out
 * as JSON (rlaif_state_set, rlaif_state_call), errors that come back as a
 * status and a message (never a crash or an exit), and that a misbehaving tick
 * costs a bounded amount of time. Exit status: 0 when every tick but the buggy
 * one worked and the buggy one was cut by the budget. */
#include <rlaif.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUG_TICK 4   /* the tick on which the world triggers the script's bug */

/* The NPCs and what each could say (two candidate lines each). The "(qN)" tags
 * are read by the test suite's fake LLM server, which prefers higher N; a real
 * model judges the words. */
static const char *const npcs[][3] = {
    {"guard", "Halt! State your business in the village. (q2)", "Nice weather for a stroll. (q0)"},
    {"merchant", "Fresh bread, two coins a loaf! (q1)", "Put that sword away before you scare my customers. (q3)"},
    {"healer", "You look hurt; sit down and let me see that wound. (q3)", "I only work on Tuesdays. (q0)"},
};
static const char *const situations[] = {
    "The player walks up to the village gate at dusk.",
    "The player draws a sword in the crowded market.",
    "The player limps into the square, bleeding.",
};

/* Append the world of tick t as the JSON argument list of game.tick. */
static void world_json(char *buf, size_t cap, int t) {
    int n = snprintf(buf, cap, "[{\"tick\": %d, \"situation\": \"%s\", \"bug\": %s, \"npcs\": [", t,
                     situations[t % 3], t == BUG_TICK ? "true" : "false");
    for (int i = 0; i < 3; i++)
        n += snprintf(buf + n, cap - (size_t)n, "%s{\"name\": \"%s\", \"lines\": [\"%s\", \"%s\"]}", i ? ", " : "",
                      npcs[i][0], npcs[i][1], npcs[i][2]);
    snprintf(buf + n, cap - (size_t)n, "]}]");
}

/* The first line of an error message (the rest is the traceback). */
static void first_line(const char *msg, char *out, size_t cap) {
    size_t n = strcspn(msg, "\n");
    snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), msg);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [TICKS]   (DIR holds game.lua)\n", argv[0]);
        return 2;
    }
    int ticks = argc > 2 ? atoi(argv[2]) : 6;
    rlaif_set_threads(1);   /* a game keeps the toolkit on one core, beside its own threads */

    /* 1. A sandboxed state: scripts may use DIR only, 256 MB in all (Lua heap,
     *    tensors, models), 4 million VM instructions per call (a tick needs about 1). */
    rlaif_options opt = rlaif_options_default();
    opt.root = argv[1];
    opt.memory_limit = (size_t)256 << 20;
    opt.instruction_budget = 4000000;
    rlaif_state *S = rlaif_state_new(&opt);
    if (S == NULL) {
        fprintf(stderr, "game: cannot create the Lua state: %s\n", rlaif_last_error());
        return 1;
    }

    /* 2. Configuration in, the script loaded, game.init called. */
    const char *base_url = getenv("RLAIF_GAME_BASE_URL"), *model = getenv("RLAIF_GAME_MODEL");
    char config[512];
    if (base_url != NULL)
        snprintf(config, sizeof config, "{\"api\": \"openai-completions\", \"base_url\": \"%s\", \"model\": \"%s\"}",
                 base_url, model ? model : "default");
    else
        snprintf(config, sizeof config, "{\"api\": \"local\"}");
    char *info = NULL;
    if (rlaif_state_set(S, "config", config) != RLAIF_OK || rlaif_state_run_file(S, "game.lua") != RLAIF_OK ||
        rlaif_state_call(S, "game.init", NULL, &info) != RLAIF_OK) {
        fprintf(stderr, "game: the script failed to start:\n%s\n", rlaif_state_error(S));
        rlaif_state_free(S);
        return 1;
    }
    printf("game: script ready %s\n", info);
    rlaif_free(info);

    /* 3. The game loop: one call per tick, timed. */
    int ok = 0, cut = 0, failed = 0;
    double slowest = 0, cut_ms = 0;
    for (int t = 1; t <= ticks; t++) {
        char world[2048], *said = NULL, msg[300];
        world_json(world, sizeof world, t);
        double t0 = rlaif_clock();
        int st = rlaif_state_call(S, "game.tick", world, &said);
        double ms = (rlaif_clock() - t0) * 1e3;
        long instructions = rlaif_state_instructions(S);
        if (st == RLAIF_OK) {
            ok++;
            if (ms > slowest) slowest = ms;
            printf("tick %d: %.1f ms, %ld instructions: %s\n", t, ms, instructions, said);
        } else if (st == RLAIF_EBUDGET) {
            cut++;
            cut_ms = ms;
            first_line(rlaif_state_error(S), msg, sizeof msg);
            printf("tick %d: cut by the instruction budget after %.1f ms (%ld instructions): %s\n", t, ms,
                   instructions, msg);
        } else {
            failed++;
            first_line(rlaif_state_error(S), msg, sizeof msg);
            printf("tick %d: failed (%s): %s\n", t, rlaif_status_name(st), msg);
        }
        rlaif_free(said);
    }
    printf("game: %d ticks, %d ok (slowest %.1f ms), %d cut by the budget (%.1f ms), %d failed; "
           "state memory %.1f MB\n",
           ticks, ok, slowest, cut, cut_ms, failed, rlaif_state_memory(S) / 1e6);
    rlaif_state_free(S);
    int bug_expected = ticks >= BUG_TICK;
    return failed == 0 && cut == bug_expected && ok == ticks - cut ? 0 : 1;
}
