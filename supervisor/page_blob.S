/* The live page, supervisor/page.html, as read-only data in
 * herd-supervisor (http.c serves it at /): http_page up to http_page_end. */
    .section .rodata
    .global http_page
    .global http_page_end
    .balign 16
http_page:
    .incbin "supervisor/page.html"
http_page_end:
    .byte 0
    .section .note.GNU-stack,"",@progbits
