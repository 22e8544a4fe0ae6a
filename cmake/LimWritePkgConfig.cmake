# Install-time script (included from an install(CODE) rule): writes liblim.pc
# for the prefix actually being installed to (CMAKE_INSTALL_PREFIX here is the
# value of `cmake --install --prefix`, or the configured one), then installs it
# with file(INSTALL), which honours DESTDIR and the install manifest.
#
# Inputs: LIM_PC_TEMPLATE LIM_PC_WORKDIR LIM_PC_VERSION LIM_PC_DESCRIPTION
#         LIM_PC_LIBDIR LIM_PC_INCLUDEDIR (the GNUInstallDirs values)

set(LIM_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")

foreach(_kind LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${LIM_PC_${_kind}}")
    set(LIM_PC_${_kind}_VALUE "${LIM_PC_${_kind}}")
  else()
    set(LIM_PC_${_kind}_VALUE "\${prefix}/${LIM_PC_${_kind}}")
  endif()
endforeach()

if(IS_ABSOLUTE "${LIM_PC_LIBDIR}")
  set(_lim_pc_dest "${LIM_PC_LIBDIR}/pkgconfig")
else()
  set(_lim_pc_dest "${CMAKE_INSTALL_PREFIX}/${LIM_PC_LIBDIR}/pkgconfig")
endif()

configure_file("${LIM_PC_TEMPLATE}" "${LIM_PC_WORKDIR}/liblim.pc" @ONLY)
file(INSTALL DESTINATION "${_lim_pc_dest}" TYPE FILE
     FILES "${LIM_PC_WORKDIR}/liblim.pc")
