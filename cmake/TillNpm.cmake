# till_npm_ci(<dir> <what> <stamp_var>)
#
# A build step that runs `npm ci` in <dir> whenever its package.json or package-lock.json changes
# (or its node_modules is deleted), and sets <stamp_var> to the file to depend on. npm rewrites
# node_modules/.package-lock.json on every install, so it doubles as the stamp. <what> says in the
# build log what the packages are for.
function(till_npm_ci dir what stamp_var)
  find_program(NPM_PROGRAM npm)
  if(NOT NPM_PROGRAM)
    message(FATAL_ERROR "npm is needed for ${what}: run scripts/install-deps")
  endif()
  set(stamp ${dir}/node_modules/.package-lock.json)
  add_custom_command(
    OUTPUT ${stamp}
    COMMAND ${NPM_PROGRAM} ci --no-audit --no-fund
    COMMAND ${CMAKE_COMMAND} -E touch ${stamp}
    DEPENDS ${dir}/package.json ${dir}/package-lock.json
    WORKING_DIRECTORY ${dir}
    COMMENT "npm ci in ${dir} (${what})"
    VERBATIM)
  set(${stamp_var} ${stamp} PARENT_SCOPE)
endfunction()
