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
  # ThreadSanitizer instruments SinkScope's code only: LibTorch, OpenBLAS and Qt come from Debian
  # uninstrumented, so what they do inside is invisible (docs/reliability.md, "ThreadSanitizer").
  if(SINKSCOPE_SANITIZE_THREAD)
    target_compile_options(${target} PRIVATE -fsanitize=thread -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=thread)
  endif()
endfunction()
