# till_embed_text(<target> <input> <namespace> <function>)
#
# Compiles the text file <input> into <target>: a build step (cmake/embed_text.cmake) generates
# ${CMAKE_BINARY_DIR}/generated/<function>.cc defining `std::string <namespace>::<function>()`,
# regenerated whenever <input> changes. Declare that function where it is used.
function(till_embed_text target input namespace function)
  set(output ${CMAKE_BINARY_DIR}/generated/${function}.cc)
  add_custom_command(
    OUTPUT ${output}
    COMMAND ${CMAKE_COMMAND} -DINPUT=${input} -DOUTPUT=${output} -DNAMESPACE=${namespace}
            -DFUNCTION=${function} -P ${CMAKE_SOURCE_DIR}/cmake/embed_text.cmake
    DEPENDS ${input} ${CMAKE_SOURCE_DIR}/cmake/embed_text.cmake
    COMMENT "Embedding ${input}"
    VERBATIM)
  target_sources(${target} PRIVATE ${output})
endfunction()

# till_embed_dashboard(<target>)
#
# Builds the web dashboard (web/, with npm) into ${CMAKE_BINARY_DIR}/web and compiles the result into
# <target> as `std::span<const till::EmbeddedFile> till::embedded_dashboard_files()` (declared in
# src/api/dashboard.h). `npm ci` runs when web/package-lock.json changes (cmake/TillNpm.cmake);
# the bundle is rebuilt when any source under web/ changes.
function(till_embed_dashboard target)
  set(web_dir ${CMAKE_SOURCE_DIR}/web)
  set(out_dir ${CMAKE_BINARY_DIR}/web)
  till_npm_ci(${web_dir} "the dashboard's build tools" npm_stamp)
  file(GLOB_RECURSE web_sources CONFIGURE_DEPENDS
       ${web_dir}/src/* ${web_dir}/*.html ${web_dir}/*.mjs ${web_dir}/*.json)
  list(FILTER web_sources EXCLUDE REGEX "/node_modules/")
  set(bundle ${out_dir}/index.html ${out_dir}/assets/app.js ${out_dir}/assets/app.css)
  add_custom_command(
    OUTPUT ${bundle}
    COMMAND ${NPM_PROGRAM} run --silent build -- --outdir ${out_dir}
    DEPENDS ${npm_stamp} ${web_sources}
    WORKING_DIRECTORY ${web_dir}
    COMMENT "Building the dashboard (web/ → ${out_dir})"
    VERBATIM)
  set(output ${CMAKE_BINARY_DIR}/generated/embedded_dashboard_files.cc)
  add_custom_command(
    OUTPUT ${output}
    COMMAND ${CMAKE_COMMAND} -DINPUT_DIR=${out_dir} -DOUTPUT=${output} -DNAMESPACE=till
            -DFUNCTION=embedded_dashboard_files -P ${CMAKE_SOURCE_DIR}/cmake/embed_files.cmake
    DEPENDS ${bundle} ${CMAKE_SOURCE_DIR}/cmake/embed_files.cmake
    COMMENT "Embedding the dashboard"
    VERBATIM)
  target_sources(${target} PRIVATE ${output})
endfunction()
