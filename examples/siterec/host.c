/* The host side the CLI's failover and plan commands share: a target VM is a
 * description file in a directory (and its ARM template beside it). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"

void cli_vm_files(const char *dir, const char *name, char *vm_json, char *arm, size_t cap)
{
	snprintf(vm_json, cap, "%s/%s.vm.json", dir ? dir : ".", name);
	snprintf(arm, cap, "%s/%s.arm.json", dir ? dir : ".", name);
}

static int write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	int bad = !f || fputs(text, f) < 0 || fputc('\n', f) < 0;
	if (f && fclose(f) != 0)
		bad = 1;
	return bad ? -1 : 0;
}

static char *vm_json(const siterec_failover_vm *vm)
{
	cJSON *o = cJSON_CreateObject(), *disks = cJSON_AddArrayToObject(o, "disks"),
	      *nics = cJSON_AddArrayToObject(o, "nics");
	char t[40];
	cJSON_AddStringToObject(o, "name", vm->name);
	cJSON_AddStringToObject(o, "vm", vm->vm_id);
	cJSON_AddNumberToObject(o, "generation", vm->generation);
	cJSON_AddNumberToObject(o, "source_generation", vm->source_generation);
	cJSON_AddStringToObject(o, "firmware", vm->firmware == SITEREC_FIRMWARE_UEFI ? "uefi" : "bios");
	cJSON_AddBoolToObject(o, "isolated", vm->isolated);
	cJSON_AddNumberToObject(o, "point", (double)vm->point_id);
	cli_iso_time(vm->point_time_ms, t, sizeof(t));
	cJSON_AddStringToObject(o, "point_time", t);
	cJSON_AddStringToObject(o, "size", vm->vm_size);
	cJSON_AddStringToObject(o, "os", vm->os_type);
	for (uint32_t i = 0; i < vm->n_disks; i++) {
		cJSON *d = cJSON_CreateObject();
		cJSON_AddItemToArray(disks, d);
		cJSON_AddStringToObject(d, "id", vm->disks[i].id);
		cJSON_AddStringToObject(d, "location", vm->disks[i].location);
		cJSON_AddNumberToObject(d, "size", (double)vm->disks[i].size);
		cJSON_AddStringToObject(d, "role", vm->disks[i].role == SITEREC_DISK_ROLE_OS ? "os" : "data");
		cJSON_AddNumberToObject(d, "lun", vm->disks[i].lun);
	}
	for (uint32_t i = 0; i < vm->n_nics; i++) {
		cJSON *n = cJSON_CreateObject();
		cJSON_AddItemToArray(nics, n);
		cJSON_AddStringToObject(n, "network", vm->nics[i].network);
		cJSON_AddStringToObject(n, "subnet", vm->nics[i].subnet);
		if (vm->nics[i].ip)
			cJSON_AddStringToObject(n, "ip", vm->nics[i].ip);
	}
	char *s = cJSON_Print(o);
	cJSON_Delete(o);
	return s;
}

int cli_vm_files_write(const char *dir, const siterec_failover_vm *vm, char *vm_json_path, char *arm,
                       size_t cap)
{
	cli_vm_files(dir, vm->name, vm_json_path, arm, cap);
	char *text = vm_json(vm);
	int rc = text ? write_text(vm_json_path, text) : -1;
	free(text);
	if (rc == 0 && vm->arm_template)
		rc = write_text(arm, vm->arm_template);
	return rc;
}
