# Writes man pages from the programs' own --help (run by the `man` target; cmake -P):
#   -DCLI=<sinkscope-cli> [-DGUI=<sinkscope>] -DVERSION=x.y.z -DOUT=<folder>
# sinkscope-cli.1 holds the overview and every command's help (the commands are read from the
# overview's "Commands:" list); sinkscope.1 the window's options.
cmake_minimum_required(VERSION 3.25)

# roff-escapes help text and keeps its layout (.nf); usage lines stay as written.
function(sinkscope_roff text out)
  string(REPLACE "\\" "\\e" text "${text}")
  string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" text "${text}")
  set(${out} "${text}" PARENT_SCOPE)
endfunction()

function(sinkscope_help program out)
  # Offscreen: the window's --help needs a QApplication but no display. No leak check in ASan builds.
  execute_process(COMMAND ${CMAKE_COMMAND} -E env QT_QPA_PLATFORM=offscreen ASAN_OPTIONS=detect_leaks=0 ${program}
                          ${ARGN}
                  OUTPUT_VARIABLE text RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "make_man: ${program} ${ARGN} failed (${rc}): ${err}")
  endif()
  set(${out} "${text}" PARENT_SCOPE)
endfunction()

string(TIMESTAMP today "%Y-%m-%d" UTC)
file(MAKE_DIRECTORY ${OUT})

sinkscope_help(${CLI} overview --help)
string(REGEX MATCH "Commands:\n(.*)\n\n" commands_block "${overview}")
set(commands "")
string(REPLACE "\n" ";" lines "${CMAKE_MATCH_1}")
foreach(line IN LISTS lines)
  if(line MATCHES "^  ([a-z-]+) ")
    list(APPEND commands ${CMAKE_MATCH_1})
  endif()
endforeach()
if(NOT commands)
  message(FATAL_ERROR "make_man: no commands found in 'sinkscope-cli --help'")
endif()
string(REGEX REPLACE "^([^\n]*)\n.*" "\\1" title "${overview}")
string(REGEX REPLACE "^[^—]*— *" "" summary "${title}")

sinkscope_roff("${overview}" body)
set(page ".TH SINKSCOPE-CLI 1 \"${today}\" \"SinkScope ${VERSION}\" \"User Commands\"\n")
string(APPEND page ".SH NAME\nsinkscope-cli \\- ${summary}\n.SH SYNOPSIS\n.B sinkscope-cli\n")
string(APPEND page "\\fIcommand\\fR [\\fIoptions\\fR]\n.SH DESCRIPTION\n.nf\n${body}.fi\n.SH COMMANDS\n")
foreach(cmd IN LISTS commands)
  sinkscope_help(${CLI} help_text ${cmd} --help)
  sinkscope_roff("${help_text}" body)
  string(APPEND page ".SS ${cmd}\n.nf\n${body}.fi\n")
endforeach()
string(APPEND page ".SH FILES\n.TP\n.I <prefix>/share/sinkscope\nprobe sets and, when packaged with it, the default model's GGUF file\n")
string(APPEND page ".TP\n.I $XDG_CACHE_HOME/sinkscope\nconverted model archives (default ~/.cache/sinkscope)\n")
string(APPEND page ".SH SEE ALSO\n.BR sinkscope (1)\n")
file(WRITE ${OUT}/sinkscope-cli.1 "${page}")

if(GUI)
  sinkscope_help(${GUI} gui_help --help)
  string(REGEX REPLACE "Usage: [^ \n]*/" "Usage: " gui_help "${gui_help}")
  sinkscope_roff("${gui_help}" body)
  set(page ".TH SINKSCOPE 1 \"${today}\" \"SinkScope ${VERSION}\" \"User Commands\"\n")
  string(APPEND page ".SH NAME\nsinkscope \\- see and tame attention sinks in transformer language models (the window)\n")
  string(APPEND page ".SH SYNOPSIS\n.B sinkscope\n[\\fIoptions\\fR] [\\fIfile\\fR]\n.SH DESCRIPTION\n.nf\n${body}.fi\n")
  string(APPEND page ".SH SEE ALSO\n.BR sinkscope-cli (1)\n")
  file(WRITE ${OUT}/sinkscope.1 "${page}")
endif()
