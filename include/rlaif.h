/* rlaif.h -- the rlaif C API: Reinforcement Learning from AI Feedback as a C
 * toolkit with embedded Lua 5.4.
 *
 *   #include <rlaif.h>          // cc app.c $(pkg-config --cflags --libs rlaif)
 *
 * rlaif/common.h     version, status codes and errors, threads, cancellation
 * rlaif/tensor.h     float32 tensors, safetensors files
 * rlaif/tokenizer.h  the exact byte-level BPE tokenizer (tiktoken, tokenizer.json)
 * rlaif/llm.h        the LLM client, requests and results as JSON strings
 * rlaif/model.h      GPT-2 / Llama-family models: load, logits, log-probs, reward, generate
 * rlaif/state.h      embedding: a sandboxed Lua state with the toolkit loaded
 *
 * Every function returns an rlaif_status (0 = RLAIF_OK) or documents its
 * result; rlaif_last_error() holds the calling thread's last message. See
 * docs/embedding.md for the API by example, ownership and the thread model. */
#ifndef RLAIF_API_H
#define RLAIF_API_H

#include "rlaif/common.h"
#include "rlaif/tensor.h"
#include "rlaif/tokenizer.h"
#include "rlaif/llm.h"
#include "rlaif/model.h"
#include "rlaif/state.h"

#endif
