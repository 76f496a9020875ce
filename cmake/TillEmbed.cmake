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
