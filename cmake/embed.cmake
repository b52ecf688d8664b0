# embed.cmake - build one self-contained HTML page from a folder and embed it
# in a C file. Runs at build time in script mode:
#
#   cmake -DDIR=SRC_FOLDER -DHTML=OUT.html -DOUT=OUT.c -DNAME=SYMBOL -P embed.cmake
#
# DIR/index.html is the page's markup; it names its files with ordinary
# <link> and <script src> lines (so the folder also opens in a browser as it
# is). The page is index.html byte for byte, except:
#   - a line <link rel="stylesheet" href="FILE"> becomes <style>, the bytes of
#     DIR/FILE, </style>;
#   - the lines <script src="FILE"></script> (consecutive lines: the page has
#     one script) become one <script> element with the files' bytes in order,
#     one empty line between two files.
# Each inlined file must end with a newline, and must not contain what would
# end its element early (</style in CSS; </script or <!-- in a script). Any
# other <link> or <script> in index.html is an error: the page loads nothing
# else, and its one script is the files it names.
#
# HTML receives the page. OUT defines, with external linkage,
#   const unsigned char NAME[];   the page's bytes and a NUL
#   const size_t NAME_len;        the page's length without the NUL
# Needs nothing but CMake (file(READ ... HEX)).
cmake_minimum_required(VERSION 3.25)

foreach(var DIR HTML OUT NAME)
    if(NOT DEFINED ${var})
        message(FATAL_ERROR "embed.cmake: -D${var}=... is required")
    endif()
endforeach()

# The bytes of DIR/FILE into OUT_VAR, checked: it exists, ends with a newline,
# and holds none of the strings in FORBIDDEN (compared in lower case).
function(embed_read file out_var)
    set(path "${DIR}/${file}")
    if(NOT EXISTS "${path}")
        message(FATAL_ERROR "embed.cmake: ${DIR}/index.html names ${file}, which is not in ${DIR}")
    endif()
    file(READ "${path}" text)
    string(LENGTH "${text}" n)
    if(n EQUAL 0)
        message(FATAL_ERROR "embed.cmake: ${path} is empty")
    endif()
    math(EXPR last "${n} - 1")
    string(SUBSTRING "${text}" ${last} 1 tail)
    if(NOT tail STREQUAL "\n")
        message(FATAL_ERROR "embed.cmake: ${path} must end with a newline")
    endif()
    string(TOLOWER "${text}" lower)
    foreach(bad ${ARGN})
        string(FIND "${lower}" "${bad}" at)
        if(NOT at EQUAL -1)
            message(FATAL_ERROR "embed.cmake: ${path} contains \"${bad}\", which would end "
                                "its element in the page early")
        endif()
    endforeach()
    set(${out_var} "${text}" PARENT_SCOPE)
endfunction()

set(name_re "[A-Za-z0-9_.-]+")
set(link_re "\n<link rel=\"stylesheet\" href=\"(${name_re})\">\n")
set(scripts_re "\n(<script src=\"${name_re}\"></script>\n)+")
file(READ "${DIR}/index.html" rest)

# One pass over index.html: copy up to the next style sheet line or block of
# script lines, inline it, go on after it. Inlined bytes are never scanned.
set(page "")
set(markup "")
set(scripts 0)
while(TRUE)
    string(REGEX MATCH "${link_re}|${scripts_re}" found "${rest}")
    if(found STREQUAL "")
        break()
    endif()
    set(css_file "${CMAKE_MATCH_1}")
    string(FIND "${rest}" "${found}" at)
    string(LENGTH "${found}" n)
    string(SUBSTRING "${rest}" 0 ${at} head)
    math(EXPR after "${at} + ${n} - 1")
    string(SUBSTRING "${rest}" ${after} -1 rest)
    string(APPEND markup "${head}")
    if(NOT css_file STREQUAL "")
        embed_read("${css_file}" css "</style")
        string(APPEND page "${head}\n<style>\n${css}</style>")
    else()
        if(scripts)
            message(FATAL_ERROR "embed.cmake: ${DIR}/index.html: the scripts must be consecutive "
                                "lines (the page has one <script> element)")
        endif()
        set(scripts 1)
        string(REGEX MATCHALL "src=\"${name_re}\"" srcs "${found}")
        set(js "")
        set(sep "")
        foreach(src ${srcs})
            string(REGEX REPLACE "^src=\"(.*)\"$" "\\1" file "${src}")
            embed_read("${file}" text "</script" "<!--")
            string(APPEND js "${sep}${text}")
            set(sep "\n")
        endforeach()
        string(APPEND page "${head}\n<script>\n${js}</script>")
    endif()
endwhile()
string(APPEND page "${rest}")
string(APPEND markup "${rest}")

string(TOLOWER "${markup}" lower)
foreach(left "<link" "<script")
    string(FIND "${lower}" "${left}" at)
    if(NOT at EQUAL -1)
        message(FATAL_ERROR "embed.cmake: ${DIR}/index.html: cannot inline its ${left} (a style "
                            "sheet is a line <link rel=\"stylesheet\" href=\"FILE\">, the "
                            "scripts are consecutive lines <script src=\"FILE\"></script>, each "
                            "FILE in ${DIR})")
    endif()
endforeach()

get_filename_component(html_dir "${HTML}" DIRECTORY)
file(MAKE_DIRECTORY "${html_dir}")
file(WRITE "${HTML}" "${page}")

# The bytes as C: 16 a line, then the NUL.
file(READ "${HTML}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "(................................)" "\\1\n" hex "${hex}")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REPLACE "\n" "\n    " bytes "${bytes}")
file(WRITE "${OUT}" "/* Generated at build time by cmake/embed.cmake from ${DIR}/index.html
 * and the files it names. Do not edit: edit those files and rebuild. */
#include <stddef.h>

extern const unsigned char ${NAME}[];
extern const size_t ${NAME}_len;

const unsigned char ${NAME}[] = {
    ${bytes}0x00};
const size_t ${NAME}_len = ${len};
")
