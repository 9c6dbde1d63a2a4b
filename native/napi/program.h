// The engine's program as the bindings read it (program_binding.cpp): parsed
// from JavaScript by the op table's field lists, then checked so that the
// executor can trust it.
#pragma once

#include <napi.h>

#include "../engine/engine.h"

namespace adcorre::napi {

// The program lib/model/program.ts builds (lib/native.ts's NativeProgram).
// Throws a JavaScript error naming the first op, field or id that is not what
// the op table says.
engine::ProgramDesc parse_program(const Napi::Object& o);

// Everything the executor indexes with: sizes its arithmetic can take, ops
// reading only tensors already written, shapes that fit (the op table's
// shape rules) and parameters as long as the ops' shapes say.
void check_program(Napi::Env env, const engine::ProgramDesc& p);

// opTable, programShapes, windowGeometry
void init_program_bindings(Napi::Env env, Napi::Object exports);

}  // namespace adcorre::napi
