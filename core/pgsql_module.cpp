// pgsql_module.cpp - popgate-pgsql.so (see pgsql_module.h): hands the PostgreSQL
// connector to popgate_dbdrivers. Links Poco::DataPostgreSQL and nothing of popgate.
#include "core/pgsql_module.h"

#include <Poco/Data/PostgreSQL/Connector.h>

extern "C" {

__attribute__((visibility("default"))) const char* popgate_pgsql_version()
{
    return POPGATE_VERSION;
}

__attribute__((visibility("default"))) Poco::Data::Connector* popgate_pgsql_connector()
{
    return new Poco::Data::PostgreSQL::Connector;
}
}
