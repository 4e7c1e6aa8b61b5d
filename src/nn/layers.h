// Every layer of the models, for code that wants them all (the GPT, its tests).
#pragma once

#include "nn/common.h"
#include "nn/crossentropy.h"
#include "nn/dropout.h"
#include "nn/encoder.h"
#include "nn/layernorm.h"
#include "nn/matmul.h"
#include "nn/pointwise.h"
#include "nn/self_attention.h"
