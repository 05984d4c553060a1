#include <stdlib.h>

#include "list.h"

void list_push(struct list *list, int value) {
    struct node *node = malloc(sizeof *node);
    node->value = value;
    node->next = list->head;
    list->head = node;
    list->length++;
}

void list_free(struct list *list) {
    while (list->head) {
        struct node *next = list->head->next;
        free(list->head);
        list->head = next;
    }
    list->length = 0;
}
