#ifndef LIST_H
#define LIST_H

struct node {
    int value;
    struct node *next;
};

struct list {
    struct node *head;
    unsigned length;
};

void list_push(struct list *list, int value);
void list_free(struct list *list);
#endif
