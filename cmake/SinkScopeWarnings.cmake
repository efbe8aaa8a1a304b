# Warnings and sanitizers shared by every SinkScope target: call sinkscope_target_defaults(tgt).
function(sinkscope_target_defaults target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wno-unused-parameter -Wno-missing-field-initializers
                                           $<$<CXX_COMPILER_ID:GNU>:-Wshadow=local>)
  if(SINKSCOPE_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(SINKSCOPE_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer
                                             -fno-sanitize-recover=undefined)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()
