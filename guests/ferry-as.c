/* SPDX-License-Identifier: MIT */
#include "as.h"
int main(void) { return 1; }
